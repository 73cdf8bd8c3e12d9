"""Open-interest analytics: put-call ratios, max pain, OI build-up classes and the OI tracker."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from expirytrack_dagster.calendar import utc_ns
from expirytrack_dagster.research.asof import last_row_per_contract, session_at, to_ist

BUILD_UP_CLASSES = (
    "long_build_up",
    "short_build_up",
    "short_covering",
    "long_unwinding",
    "neutral",
)
"""Price up & OI up, price down & OI up, price up & OI down, price down & OI down, and neutral
(either change is zero or unknown)."""

TRACKER_WINDOWS = (3, 5, 10, 15, 30)


def pcr(chain: pd.DataFrame) -> dict[str, float]:
    """Put-call ratios of a chain: ``pcr_oi`` = Σ PE OI / Σ CE OI, ``pcr_volume`` likewise on
    ``session_volume``. ``chain`` is long form (``option_type``, ``oi``, ``session_volume``);
    missing values count as 0; a ratio with a zero denominator is NaN."""
    return pcr_of(
        chain["option_type"].to_numpy(),
        chain["oi"].to_numpy(dtype=float),
        chain["session_volume"].to_numpy(dtype=float),
    )


def pcr_of(option_type: np.ndarray, oi: np.ndarray, volume: np.ndarray) -> dict[str, float]:
    """:func:`pcr` on plain arrays (one entry per contract), for callers looping over days."""
    out: dict[str, float] = {}
    for name, column in (("pcr_oi", oi), ("pcr_volume", volume)):
        values = np.nan_to_num(np.asarray(column, dtype=float))
        calls, puts = values[option_type == "CE"].sum(), values[option_type == "PE"].sum()
        out[name] = float(puts / calls) if calls > 0 else math.nan
    return out


def max_pain(chain: pd.DataFrame) -> float:
    """The listed strike at which option holders would be paid least at expiry, from OI.

    For each listed strike ``S`` as the settlement price, payout = Σ over calls OI·max(S − K, 0)
    + Σ over puts OI·max(K − S, 0); the strike with the smallest payout wins, a tie goes to the
    lower strike. ``chain`` is long form (``strike``, ``option_type``, ``oi``; missing OI counts
    as 0). NaN when no contract has open interest.
    """
    return max_pain_of(
        chain["strike"].to_numpy(dtype=float),
        (chain["option_type"] == "CE").to_numpy(),
        chain["oi"].to_numpy(dtype=float),
    )


def max_pain_of(strikes: np.ndarray, is_call: np.ndarray, oi: np.ndarray) -> float:
    """:func:`max_pain` on plain arrays (one entry per contract), for callers looping over days."""
    oi = np.nan_to_num(np.asarray(oi, dtype=float))
    if not (oi > 0).any():
        return math.nan
    listed = np.unique(strikes)
    settle = listed[:, None]
    payout = np.where(is_call, np.maximum(settle - strikes, 0.0), np.maximum(strikes - settle, 0.0))
    total = payout @ oi
    return float(listed[np.argmin(total)])


def build_up(price_change: pd.Series, oi_change: pd.Series) -> pd.Series:
    """OI build-up class per row, a categorical of :data:`BUILD_UP_CLASSES`.

    Price up & OI up: ``long_build_up``; price down & OI up: ``short_build_up``; price up & OI
    down: ``short_covering``; price down & OI down: ``long_unwinding``; ``neutral`` when either
    change is zero or NaN.
    """
    price = pd.Series(price_change, dtype=float)
    oi = pd.Series(oi_change, dtype=float).set_axis(price.index)
    conditions = [
        (price > 0) & (oi > 0),
        (price < 0) & (oi > 0),
        (price > 0) & (oi < 0),
        (price < 0) & (oi < 0),
    ]
    labels = np.select(conditions, BUILD_UP_CLASSES[:4], default="neutral")
    return pd.Series(
        pd.Categorical(labels, categories=BUILD_UP_CLASSES), index=price.index, name="build_up"
    )


def oi_tracker(
    candles: pd.DataFrame,
    at: pd.Timestamp,
    strikes: Iterable[float],
    windows: Sequence[int] = TRACKER_WINDOWS,
) -> pd.DataFrame:
    """OI change per contract over the last ``w`` minutes, for each window ``w``.

    ``candles`` as for :func:`~expirytrack_dagster.research.asof.chain_asof`, with per-contract
    columns ``strike`` and ``option_type``; only contracts whose strike is in ``strikes`` are
    kept. Output: one row per contract sorted by strike then type, columns ``strike``,
    ``option_type``, ``expired_instrument_key``, ``oi`` (as-of OI at ``at``), and for each ``w``:
    ``oi_chg_{w}m`` (OI at ``at`` minus the as-of OI at ``at − w`` minutes, both in ``at``'s
    session) and ``oi_chg_pct_{w}m`` (that change in % of the earlier OI). NaN when ``at − w`` is
    before the session open or the contract had not traded by then in the session.
    """
    at = to_ist(at)
    session = session_at(at)
    wanted = np.fromiter((float(s) for s in strikes), dtype=float)
    chosen = candles[np.isin(candles["strike"].to_numpy(dtype=float), wanted)]
    # numpy on integer nanoseconds and contract codes; one DataFrame built at the end.
    ns = utc_ns(chosen["timestamp"])
    codes, keys = pd.factorize(chosen["expired_instrument_key"], sort=True)
    _, first = np.unique(codes, return_index=True)
    oi = chosen["open_interest"].to_numpy(dtype=float)
    today = np.flatnonzero((ns >= pd.Timestamp(session.open).value) & (ns <= at.value))

    def oi_as_of(moment: pd.Timestamp) -> np.ndarray:
        """Each contract's OI of its last candle in the session at or before ``moment``."""
        values = np.full(len(keys), np.nan)
        if moment >= session.open:
            last = last_row_per_contract(today[ns[today] <= moment.value], codes, ns)
            values[codes[last]] = oi[last]
        return values

    now = oi_as_of(at)
    out: dict[str, np.ndarray] = {
        "strike": chosen["strike"].to_numpy(dtype=float)[first],
        "option_type": chosen["option_type"].to_numpy()[first],
        "expired_instrument_key": np.asarray(keys),
        "oi": now,
    }
    for w in windows:
        then = oi_as_of(at - pd.Timedelta(minutes=w))
        change = now - then
        out[f"oi_chg_{w}m"] = change
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"oi_chg_pct_{w}m"] = np.where(then != 0, 100.0 * change / then, np.nan)
    order = np.lexsort((out["option_type"], out["strike"]))
    return pd.DataFrame({name: values[order] for name, values in out.items()})
