"""The option chain as of a minute: each contract's last candle of the same session, never carried.

Only minutes that traded have a candle, so "the chain at 10:30" is, per contract, the last candle at
or before 10:30 *of the session that contains 10:30*. A contract that last traded yesterday has no
price at 10:30 today (``close`` NaN), not yesterday's close.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from expirytrack_dagster.calendar import IST, Session, session_for, sessions_between, utc_ns

CANDLE_COLUMNS = ("expired_instrument_key", "timestamp", "close", "volume", "open_interest")
"""Columns :func:`chain_asof` needs; ``open``, ``high``, ``low`` and any per-contract column
(``strike``, ``option_type``…) are carried when present."""

PRICE_COLUMNS = ("open", "high", "low", "close")


def session_at(at: pd.Timestamp) -> Session:
    """The session containing minute ``at`` (IST); ``ValueError`` on a closed day or outside hours."""
    at = to_ist(at)
    session = session_for(at.date())
    if session is None:
        raise ValueError(f"{at.date()} is not a trading day (weekend or exchange holiday)")
    if not session.open <= at < session.close:
        raise ValueError(
            f"{at:%Y-%m-%d %H:%M} is outside the session "
            f"({session.open:%H:%M}-{session.close:%H:%M} IST)"
        )
    return session


def previous_session(session: Session) -> Session | None:
    """The trading session before ``session`` (looking back up to 30 days), or None."""
    day = session.trading_date
    earlier = sessions_between(day - pd.Timedelta(days=30), day - pd.Timedelta(days=1))
    return earlier[-1] if earlier else None


def to_ist(at: pd.Timestamp | str) -> pd.Timestamp:
    """``at`` as a tz-aware IST timestamp (a naive one is read as IST)."""
    at = pd.Timestamp(at)
    return at.tz_localize(IST) if at.tzinfo is None else at.tz_convert(IST)


def chain_asof(candles: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
    """Per contract, the state of the market at minute ``at``, from its own session only.

    Input ``candles``: one row per contract and traded minute, columns ``expired_instrument_key``,
    ``timestamp`` (tz-aware, candle start), ``close``, ``volume``, ``open_interest`` (optionally
    ``open``, ``high``, ``low`` and per-contract columns such as ``strike`` and ``option_type``,
    which are carried). Rows of other sessions are allowed (the previous one is used for
    ``prev_session_oi``; others are ignored).

    Output: one row per contract found in ``candles``, sorted by key, columns

    - ``expired_instrument_key`` and the carried per-contract columns;
    - ``timestamp``: start of the last candle at or before ``at`` in ``at``'s session (NaT if none);
    - ``open``/``high``/``low``/``close``: that candle's prices (NaN if none; ``close`` is the LTP);
    - ``age_minutes``: whole minutes from that candle to ``at`` (0 when it traded at ``at``);
    - ``session_volume``: volume summed over the session's candles up to and including ``at``;
    - ``oi``: open interest of that candle (the last known OI in the session; NaN if none);
    - ``prev_session_oi``: OI of the contract's last candle of the previous trading session;
    - ``oi_change``: ``oi − prev_session_oi`` (NaN when either is unknown).

    ``ValueError`` when ``at`` is not inside a trading session.
    """
    missing = [c for c in CANDLE_COLUMNS if c not in candles.columns]
    if missing:
        raise ValueError(f"chain_asof: candles lack columns {missing}")
    at = to_ist(at)
    session = session_at(at)
    key = "expired_instrument_key"
    # numpy on integer nanoseconds and contract codes: a few vector passes, whatever the size.
    ns = utc_ns(candles["timestamp"])
    codes, keys = pd.factorize(candles[key], sort=True)
    n = len(keys)
    now = np.flatnonzero((ns >= _ns(session.open)) & (ns <= at.value))
    last = last_row_per_contract(now, codes, ns)
    out: dict[str, object] = {key: np.asarray(keys)}
    extra = [c for c in candles.columns if c not in (*CANDLE_COLUMNS, "open", "high", "low")]
    if extra:
        _, first = np.unique(codes, return_index=True)
        for column in extra:
            out[column] = candles[column].to_numpy()[first]
    stamp = np.full(n, np.iinfo(np.int64).min)  # NaT
    stamp[codes[last]] = ns[last]
    out["timestamp"] = pd.DatetimeIndex(stamp, tz="UTC").tz_convert(IST)
    for column in (*(c for c in PRICE_COLUMNS if c in candles.columns), "open_interest"):
        values = np.full(n, np.nan)
        values[codes[last]] = candles[column].to_numpy(dtype=float)[last]
        out["oi" if column == "open_interest" else column] = values
    age = np.full(n, np.nan)
    age[codes[last]] = (at.value - ns[last]) // 60_000_000_000
    out["age_minutes"] = age
    volume = candles["volume"].to_numpy(dtype=float)
    out["session_volume"] = np.bincount(codes[now], weights=volume[now], minlength=n).astype(
        np.int64
    )
    prev_oi = np.full(n, np.nan)
    before = previous_session(session)
    if before is not None:
        prior = np.flatnonzero((ns >= _ns(before.open)) & (ns < _ns(before.close)))
        prior_last = last_row_per_contract(prior, codes, ns)
        prev_oi[codes[prior_last]] = candles["open_interest"].to_numpy(dtype=float)[prior_last]
    out["prev_session_oi"] = prev_oi
    out["oi_change"] = out["oi"] - prev_oi
    return pd.DataFrame(out)


def _ns(moment: datetime) -> int:
    return pd.Timestamp(moment).value


def last_row_per_contract(rows: np.ndarray, codes: np.ndarray, ns: np.ndarray) -> np.ndarray:
    """Of ``rows`` (positions), the latest one of each contract code."""
    if not rows.size:
        return rows
    ordered = rows[np.lexsort((ns[rows], codes[rows]))]
    group = codes[ordered]
    return ordered[np.append(group[1:] != group[:-1], True)]
