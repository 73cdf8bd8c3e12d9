"""The three partitioned research tables of one partition, computed together from its candles.

``option_greeks`` (per option per traded minute), ``option_chain_daily`` (per contract per
session) and ``chain_metrics`` (per session and bucket) share one as-of grid
(``partition_grid``) and the research core's definitions:

- **forward** at a minute: ``forward.synthetic_forward`` (median of ``K + e^{rτ}(C − P)`` over the
  3 strikes of smallest ``|C − P|`` whose legs both traded within ``max_age_minutes``, same
  session), evaluated for all minutes at once by ``partition_grid.synthetic_forwards``;
- **IV and greeks**: ``black76.implied_vol`` / ``black76.greeks`` of an option's close against the
  forward *at the same minute*, ``τ`` from ``expiry_time.years_to_expiry`` (ACT/365 to the expiry
  session's close); no forward (stale legs) means no IV;
- **ATM**: ``forward.atm_strike``; **PCR** and **max pain**: ``oi.pcr`` / ``oi.max_pain`` on the chain
  as of the minute (``partition_grid.put_call_ratios`` / ``max_pains``, vectorised);
- **build-up**: ``oi.build_up`` of the session close and OI change vs the contract's previous
  traded session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from expirytrack_dagster.calendar import session_for
from expirytrack_dagster.research import black76
from expirytrack_dagster.research.expiry_time import years_to_expiry
from expirytrack_dagster.research.oi import build_up
from expirytrack_dagster.research.partition_grid import (
    ChainGrid,
    OptionLegs,
    PartitionCandles,
    atm_strikes,
    ist_day,
    max_pains,
    put_call_ratios,
    synthetic_forwards,
    to_minutes,
    to_timestamps,
)

PER_CANDLE = ("forward", "iv", "delta", "gamma", "theta", "vega")
SLICE_ROWS = 250_000
"""Options solved for IV at once (bounds the solver's temporary arrays)."""

SKEW_DELTA = 0.25
"""The 25-delta skew: IV of the put of delta -0.25 minus IV of the call of delta +0.25."""


@dataclass(frozen=True)
class ChainTables:
    """The partition's rows of ``option_greeks``, ``option_chain_daily`` and ``chain_metrics``."""

    option_greeks: pd.DataFrame
    option_chain_daily: pd.DataFrame
    chain_metrics: pd.DataFrame


def partition_expiry(contracts: pd.DataFrame) -> date:
    """The options' expiry (a partition holds one expiry)."""
    return min(contracts["expiry"])


def build_chain_tables(
    candles: PartitionCandles,
    *,
    rate: float,
    bucket_minutes: int,
    max_age_minutes: int,
) -> ChainTables:
    """The three tables of one partition (see the module docstring for each definition)."""
    contracts = candles.contracts
    is_option = contracts["instrument_type"].isin(["CE", "PE"]).to_numpy()
    legs = OptionLegs.of(contracts)
    # Futures share the grid (their columns are never read as legs): no copy of the candles.
    grid = ChainGrid.build(candles)
    expiry = partition_expiry(contracts) if len(contracts) else None
    forwards = _forwards_at(grid, grid.minutes, legs, expiry, rate, max_age_minutes)
    chain_metrics = _chain_metrics(
        candles.partition_key,
        grid,
        legs,
        np.unique(ist_day(candles.minute[is_option[candles.contract]])),
        expiry,
        rate,
        bucket_minutes,
        max_age_minutes,
    )
    minutes = grid.minutes
    del grid  # the (minute × contract) arrays are not needed below: freed before the big frames
    rows = np.flatnonzero(is_option[candles.contract])
    greeks = _option_candle_greeks(candles, rows, minutes, forwards, expiry, rate)
    return ChainTables(
        option_chain_daily=_option_chain_daily(candles, rows, greeks),
        option_greeks=_option_greeks(candles, rows, greeks),
        chain_metrics=chain_metrics,
    )


def _tau(minutes: np.ndarray, expiry: date | None) -> np.ndarray:
    """``years_to_expiry`` of each minute, computed once per distinct minute."""
    if expiry is None or not len(minutes):
        return np.full(len(minutes), np.nan)
    distinct, where = np.unique(minutes, return_inverse=True)
    return years_to_expiry(pd.Series(to_timestamps(distinct)), expiry)[where]


def _forwards_at(
    grid: ChainGrid,
    minutes: np.ndarray,
    legs: OptionLegs,
    expiry: date | None,
    rate: float,
    max_age_minutes: int,
) -> np.ndarray:
    if not len(grid.minutes) or not len(legs.strikes):
        return np.full(len(minutes), np.nan)
    return synthetic_forwards(grid.at(minutes), legs, rate, _tau(minutes, expiry), max_age_minutes)


def _option_candle_greeks(
    candles: PartitionCandles,
    rows: np.ndarray,
    minutes: np.ndarray,
    forwards: np.ndarray,
    expiry: date | None,
    rate: float,
) -> dict[str, np.ndarray]:
    """Forward, IV and greeks of the option candles at ``rows`` (NaN where no forward)."""
    contracts = candles.contracts
    contract = candles.contract[rows]
    minute = candles.minute[rows]
    forward = np.full(len(rows), np.nan)
    if len(minutes):
        forward = forwards[np.minimum(np.searchsorted(minutes, minute), len(minutes) - 1)]
    strike = contracts["strike_price"].to_numpy(dtype=float)[contract]
    is_call = (contracts["instrument_type"] == "CE").to_numpy()[contract]
    tau = _tau(minute, expiry)
    out = {name: np.full(len(rows), np.nan) for name in PER_CANDLE}
    out["forward"] = forward
    # In slices: the solver's temporaries for millions of options at once would double the
    # step's peak memory, for no gain in speed.
    solvable = np.flatnonzero(np.isfinite(forward))
    for begin in range(0, len(solvable), SLICE_ROWS):
        part = solvable[begin : begin + SLICE_ROWS]
        close = candles.close[rows[part]]
        iv = black76.implied_vol(close, is_call[part], forward[part], strike[part], tau[part], rate)
        greeks = black76.greeks(is_call[part], forward[part], strike[part], tau[part], rate, iv)
        out["iv"][part] = iv
        for name in ("delta", "gamma", "theta", "vega"):
            out[name][part] = greeks[name].to_numpy()
    return out


def _keys(candles: PartitionCandles, contract: np.ndarray) -> pd.Categorical:
    names = candles.contracts["expired_instrument_key"].astype(str).to_numpy()
    return pd.Categorical.from_codes(contract, categories=names)


def _types(candles: PartitionCandles) -> pd.Categorical:
    return pd.Categorical(candles.contracts["instrument_type"].astype(str))


def _option_greeks(
    candles: PartitionCandles, rows: np.ndarray, greeks: dict[str, np.ndarray]
) -> pd.DataFrame:
    contract = candles.contract[rows]
    types = _types(candles)
    strikes = candles.contracts["strike_price"].to_numpy(dtype=float)
    columns = {
        # One category, int8 codes: not millions of pointers to the same string.
        "partition_key": pd.Categorical.from_codes(
            np.zeros(len(rows), dtype=np.int8), categories=[candles.partition_key]
        ),
        "expired_instrument_key": _keys(candles, contract),
        "timestamp": to_timestamps(candles.minute[rows]),
        "instrument_type": pd.Categorical.from_codes(
            types.codes[contract], categories=types.categories
        ),
        "strike_price": strikes[contract],
        "close": candles.close[rows],
        **greeks,
    }
    # copy=False: the arrays become the frame's columns as they are (no consolidated copy).
    return pd.DataFrame(columns, copy=False)


def _option_chain_daily(
    candles: PartitionCandles, option_rows: np.ndarray, greeks: dict[str, np.ndarray]
) -> pd.DataFrame:
    contracts = candles.contracts
    day = ist_day(candles.minute)
    # Group (contract, session) in numpy: a stable sort by the group key keeps each group's
    # candles in minute order, so first/last are the group's ends (no 10-column frame copied).
    key = candles.contract.astype(np.int64) * (int(day.max(initial=0)) + 1) + day
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    ends = np.r_[starts[1:], len(order)] - 1
    first, last = order[starts], order[ends]
    daily = pd.DataFrame(
        {
            "contract": candles.contract[first],
            "day": day[first],
            "open": candles.open[first],
            "high": np.maximum.reduceat(candles.high[order], starts) if len(order) else [],
            "low": np.minimum.reduceat(candles.low[order], starts) if len(order) else [],
            "close": candles.close[last],
            "volume": np.add.reduceat(candles.volume[order], starts) if len(order) else [],
            "open_interest": candles.open_interest[last],
            "minute": candles.minute[last],
            "row": last,
        }
    )
    previous = daily.groupby("contract", sort=False)[["close", "open_interest"]].shift()
    oi_change = daily["open_interest"] - previous["open_interest"]
    classes = build_up(daily["close"] - previous["close"], oi_change).astype(object)
    contract = daily["contract"].to_numpy()
    # The day's last candle's greeks: greeks are per option row; a future's day gets NaN.
    last_row = daily["row"].to_numpy()
    position = np.searchsorted(option_rows, last_row)
    is_option = position < len(option_rows)
    is_option[is_option] = option_rows[position[is_option]] == last_row[is_option]
    at_close = {
        name: np.where(is_option, greeks[name][np.minimum(position, len(option_rows) - 1)], np.nan)
        if len(option_rows)
        else np.full(len(last_row), np.nan)
        for name in ("forward", "iv", "delta")
    }
    return pd.DataFrame(
        {
            "partition_key": candles.partition_key,
            "expired_instrument_key": _keys(candles, contract),
            "instrument_type": pd.Categorical.from_codes(
                _types(candles).codes[contract], categories=_types(candles).categories
            ),
            "strike_price": contracts["strike_price"].to_numpy(dtype=float)[contract],
            "session_date": pd.to_datetime(daily["day"], unit="D").dt.date,
            "open": daily["open"],
            "high": daily["high"],
            "low": daily["low"],
            "close": daily["close"],
            "volume": daily["volume"],
            "open_interest": daily["open_interest"],
            "oi_change": oi_change.astype("Int64"),
            "build_up": classes.where(previous["open_interest"].notna(), None),
            "close_time": to_timestamps(daily["minute"].to_numpy()),
            "forward": at_close["forward"],
            "iv": at_close["iv"],
            "delta": at_close["delta"],
        }
    )


def bucket_minutes_of(days: np.ndarray, bucket_minutes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(bucket_start, as_of)`` minutes of every bucket of the sessions on ``days`` (epoch days,
    IST): buckets of ``bucket_minutes`` from the session open; ``as_of`` is a bucket's last minute
    (the session's last minute for a shorter final bucket)."""
    starts, ends = [], []
    for day in days:
        session = session_for(pd.Timestamp(int(day), unit="D").date())
        if session is None:
            continue
        opened, closed = to_minutes(pd.DatetimeIndex([session.open, session.close]))
        bucket = np.arange(opened, closed, bucket_minutes)
        starts.append(bucket)
        ends.append(np.minimum(bucket + bucket_minutes, closed) - 1)
    if not starts:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    return np.concatenate(starts), np.concatenate(ends)


def _chain_metrics(
    partition_key: str,
    grid: ChainGrid,
    legs: OptionLegs,
    days: np.ndarray,
    expiry: date | None,
    rate: float,
    bucket_minutes: int,
    max_age_minutes: int,
) -> pd.DataFrame:
    """One row per bucket of every session (``days``) on which an option traded."""
    bucket_start, as_of = bucket_minutes_of(days, bucket_minutes)
    chain = grid.at(as_of)
    tau = _tau(as_of, expiry)
    forward = (
        synthetic_forwards(chain, legs, rate, tau, max_age_minutes)
        if len(as_of) and len(legs.strikes)
        else np.full(len(as_of), np.nan)
    )
    atm = atm_strikes(legs.strikes, forward)
    fresh = np.where(chain.age_minutes <= max_age_minutes, chain.close, np.nan)
    calls, puts = legs.leg(fresh, "CE"), legs.leg(fresh, "PE")
    strikes = np.broadcast_to(legs.strikes, calls.shape)
    column = np.searchsorted(legs.strikes, np.nan_to_num(atm))
    column = np.minimum(column, max(len(legs.strikes) - 1, 0))
    rows = np.arange(len(as_of))
    atm_ce = np.where(np.isfinite(atm), calls[rows, column], np.nan) if calls.size else atm
    atm_pe = np.where(np.isfinite(atm), puts[rows, column], np.nan) if puts.size else atm
    iv_calls = black76.implied_vol(calls, True, forward[:, None], strikes, tau[:, None], rate)
    iv_puts = black76.implied_vol(puts, False, forward[:, None], strikes, tau[:, None], rate)
    oi = chain.open_interest
    return pd.DataFrame(
        {
            "partition_key": partition_key,
            "session_date": pd.to_datetime(ist_day(as_of), unit="D").date,
            "bucket_start": to_timestamps(bucket_start),
            "as_of": to_timestamps(as_of),
            "forward": forward,
            "atm_strike": atm,
            "pcr_oi": put_call_ratios(oi, legs),
            "pcr_volume": put_call_ratios(chain.session_volume, legs),
            "max_pain": max_pains(oi, legs),
            "ce_oi": np.nansum(legs.leg(oi, "CE"), axis=1).astype(np.int64),
            "pe_oi": np.nansum(legs.leg(oi, "PE"), axis=1).astype(np.int64),
            "atm_ce": atm_ce,
            "atm_pe": atm_pe,
            "atm_straddle": atm_ce + atm_pe,
            "atm_iv": _atm_iv(iv_calls, iv_puts, column, atm),
            "skew_25d": _skew(iv_calls, iv_puts, forward, strikes, tau, rate),
        }
    )


def _atm_iv(
    iv_calls: np.ndarray, iv_puts: np.ndarray, column: np.ndarray, atm: np.ndarray
) -> np.ndarray:
    """Mean IV of the ATM call and put (either alone when the other has none)."""
    if not iv_calls.size:
        return np.full(len(atm), np.nan)
    rows = np.arange(len(atm))
    both = np.stack([iv_calls[rows, column], iv_puts[rows, column]])
    counted = np.isfinite(both).sum(axis=0)
    mean = np.where(counted > 0, np.nansum(both, axis=0) / np.maximum(counted, 1), np.nan)
    return np.where(np.isfinite(atm), mean, np.nan)


def _skew(
    iv_calls: np.ndarray,
    iv_puts: np.ndarray,
    forward: np.ndarray,
    strikes: np.ndarray,
    tau: np.ndarray,
    rate: float,
) -> np.ndarray:
    """IV at put delta -0.25 minus IV at call delta +0.25, each interpolated linearly in delta
    between the two listed strikes around it; NaN when either is not bracketed."""
    if not iv_calls.size:
        return np.full(len(forward), np.nan)
    call_delta = _deltas(True, forward, strikes, tau, rate, iv_calls)
    put_delta = _deltas(False, forward, strikes, tau, rate, iv_puts)
    out = np.full(len(forward), np.nan)
    for q in range(len(forward)):
        call = _iv_at_delta(call_delta[q], iv_calls[q], SKEW_DELTA)
        put = _iv_at_delta(put_delta[q], iv_puts[q], -SKEW_DELTA)
        out[q] = put - call
    return out


def _deltas(
    is_call: bool,
    forward: np.ndarray,
    strikes: np.ndarray,
    tau: np.ndarray,
    rate: float,
    iv: np.ndarray,
) -> np.ndarray:
    shape = iv.shape
    greeks = black76.greeks(
        is_call,
        np.broadcast_to(forward[:, None], shape).ravel(),
        strikes.ravel(),
        np.broadcast_to(tau[:, None], shape).ravel(),
        rate,
        iv.ravel(),
    )
    return greeks["delta"].to_numpy().reshape(shape)


def _iv_at_delta(delta: np.ndarray, iv: np.ndarray, target: float) -> float:
    known = np.isfinite(delta) & np.isfinite(iv)
    if known.sum() < 2:
        return np.nan
    order = np.argsort(delta[known])
    x, y = delta[known][order], iv[known][order]
    if not x[0] <= target <= x[-1]:
        return np.nan
    return float(np.interp(target, x, y))
