"""A whole partition's chain as of many minutes at once: numpy grids (minute × contract), vectorised.

``asof.chain_asof`` answers one minute; the research assets need the chain at every traded minute
of a partition (a monthly NIFTY partition: ~3 M candles, ~20 000 minutes) and at every bucket end.
This module gives the same as-of semantics for an array of minutes in a few numpy passes:

- per contract, the last candle at or before the minute *of the same session* (never carried
  across sessions), its close and open interest, and its ``age_minutes`` (whole minutes from that
  candle's start to the minute, 0 when it traded in that minute);
- ``session_volume``: the contract's volume summed over the session up to and including the minute.

Minutes are integers: minutes since 1970-01-01 00:00 UTC (a candle's start). The IST trading date
of a minute is ``(minute + 330) // 1440`` days since 1970-01-01: a session never spans IST midnight.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from expirytrack_dagster.research.forward import STRIKES_USED

IST_OFFSET_MINUTES = 330
MINUTES_PER_DAY = 1440

_CONTRACTS = """
    SELECT expired_instrument_key, instrument_type, strike_price, expiry
    FROM main.contracts WHERE partition_key = $partition_key
    ORDER BY instrument_type, strike_price, expired_instrument_key
"""

_CANDLES = """
    WITH numbered AS (
        SELECT expired_instrument_key,
               (row_number() OVER (ORDER BY instrument_type, strike_price, expired_instrument_key)
                - 1)::INTEGER AS contract
        FROM main.contracts WHERE partition_key = $partition_key
    )
    SELECT n.contract, (epoch(c."timestamp") // 60)::BIGINT AS minute,
           c.open, c.high, c.low, c.close, c.volume, c.open_interest
    FROM main.candles c JOIN numbered n USING (expired_instrument_key)
    WHERE c.partition_key = $partition_key
"""


def ist_day(minutes: np.ndarray) -> np.ndarray:
    """The IST trading date of each minute, as days since 1970-01-01."""
    return (np.asarray(minutes, dtype=np.int64) + IST_OFFSET_MINUTES) // MINUTES_PER_DAY


def to_timestamps(minutes: np.ndarray) -> pd.DatetimeIndex:
    """Minutes since the epoch → timezone-aware IST timestamps."""
    stamps = pd.to_datetime(np.asarray(minutes, dtype=np.int64), unit="m", utc=True)
    return stamps.tz_convert("Asia/Kolkata")


def to_minutes(timestamps: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Timezone-aware timestamps → minutes since the epoch (floored)."""
    stamps = pd.DatetimeIndex(timestamps).tz_convert("UTC").as_unit("s")
    return stamps.asi8 // 60


@dataclass(frozen=True)
class PartitionCandles:
    """Every candle of one partition as arrays, contracts numbered 0..C-1 (rows of ``contracts``).

    ``contracts``: ``expired_instrument_key``, ``instrument_type`` (CE/PE/FUT), ``strike_price``,
    ``expiry``, ordered by type then strike. Candle arrays are sorted by minute, then contract.
    """

    partition_key: str
    contracts: pd.DataFrame
    contract: np.ndarray
    minute: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    open_interest: np.ndarray

    def __len__(self) -> int:
        return len(self.minute)


_COLUMNS = (
    ("contract", np.int32),
    ("minute", np.int64),
    ("open", np.float64),
    ("high", np.float64),
    ("low", np.float64),
    ("close", np.float64),
    ("volume", np.int64),
    ("open_interest", np.int64),
)
_BATCH_ROWS = 1 << 18


def load_partition(db: duckdb.DuckDBPyConnection, partition_key: str) -> PartitionCandles:
    """The partition's contracts and candles, read as numeric arrays (no per-row Python objects).

    Streamed: DuckDB's result arrives in record batches copied into arrays sized once from a
    count, so the whole result never exists twice (peak memory ≈ the arrays plus one sort copy).
    """
    params = {"partition_key": partition_key}
    contracts = db.sql(_CONTRACTS, params=params).df()
    contracts["expiry"] = pd.to_datetime(contracts["expiry"]).dt.date
    ((total,),) = db.execute(
        "SELECT count(*) FROM main.candles WHERE partition_key = $partition_key", params
    ).fetchall()
    columns = {name: np.empty(total, dtype=dtype) for name, dtype in _COLUMNS}
    filled = 0
    for batch in db.sql(_CANDLES, params=params).to_arrow_reader(_BATCH_ROWS):
        rows = batch.num_rows
        if filled + rows > total:
            raise RuntimeError(f"{partition_key}: candles changed while being read")
        for name, _ in _COLUMNS:
            columns[name][filled : filled + rows] = batch.column(name).to_numpy()
        filled += rows
    if filled != total:
        raise RuntimeError(f"{partition_key}: candles changed while being read")
    contract, minute = columns.pop("contract"), columns.pop("minute")
    # Sorted here rather than by DuckDB: one numpy argsort of an int64 key is several times
    # faster than ORDER BY on millions of rows.
    order = np.argsort(minute * (len(contracts) + 1) + contract, kind="stable")

    def sorted_column(name: str) -> np.ndarray:
        # Popped: each fetched column is freed once its sorted copy exists (peak memory).
        return columns.pop(name)[order]

    return PartitionCandles(
        partition_key,
        contracts,
        contract[order],
        minute[order],
        *(sorted_column(name) for name in ("open", "high", "low", "close", "volume")),
        sorted_column("open_interest"),
    )


@dataclass(frozen=True)
class ChainGrid:
    """The partition laid out as traded minutes × contracts, for as-of lookups at any minute."""

    minutes: np.ndarray  # (T,) sorted distinct traded minutes
    day_start: np.ndarray  # (T,) index of the first traded minute of the same IST day
    last_row: np.ndarray  # (T, C) row of the contract's last candle at or before row t, or -1
    close: np.ndarray  # (T, C) close of the candle at row t, NaN where it did not trade
    open_interest: np.ndarray  # (T, C) OI of the candle at row t (float), NaN where none
    cumulative_volume: np.ndarray  # (T, C) volume summed over rows 0..t

    @classmethod
    def build(cls, candles: PartitionCandles) -> ChainGrid:
        """One pass over the candles: a few (T, C) arrays (a monthly NIFTY: ~50 MB each)."""
        minutes, row = np.unique(candles.minute, return_inverse=True)
        count = len(candles.contracts)
        shape = (len(minutes), count)
        close = np.full(shape, np.nan)
        close[row, candles.contract] = candles.close
        oi = np.full(shape, np.nan)
        oi[row, candles.contract] = candles.open_interest
        volume = np.zeros(shape, dtype=np.int64)
        volume[row, candles.contract] = candles.volume
        traded = np.full(shape, -1, dtype=np.int32)
        traded[row, candles.contract] = row
        last_row = np.maximum.accumulate(traded, axis=0)
        days = ist_day(minutes)
        first = np.r_[True, days[1:] != days[:-1]]
        day_start = np.maximum.accumulate(np.where(first, np.arange(len(minutes)), 0))
        return cls(minutes, day_start, last_row, close, oi, np.cumsum(volume, axis=0))

    def at(self, query_minutes: np.ndarray) -> ChainAsOf:
        """The chain as of each of ``query_minutes`` (any minutes, traded or not)."""
        query = np.asarray(query_minutes, dtype=np.int64)
        row = np.searchsorted(self.minutes, query, side="right") - 1
        safe = np.maximum(row, 0)
        same_day = (row >= 0) & (ist_day(self.minutes[safe]) == ist_day(query))
        start = np.where(same_day, self.day_start[safe], safe + 1)
        last = self.last_row[safe]
        traded = same_day[:, None] & (last >= start[:, None])
        return ChainAsOf(self, query, safe, start, np.maximum(last, 0), traded)


@dataclass(frozen=True)
class ChainAsOf:
    """The chain at Q minutes: each property a (Q, C) array, NaN (volume 0) where a contract has
    not traded yet in that minute's session. Computed on demand, to keep peak memory low."""

    grid: ChainGrid
    minutes: np.ndarray  # (Q,) the query minutes
    row: np.ndarray  # (Q,) grid row at or before each minute (meaningless where nothing traded)
    start: np.ndarray  # (Q,) first grid row of the minute's session (row + 1 if none yet)
    last: np.ndarray  # (Q, C) grid row of each contract's last candle (valid where traded)
    traded: np.ndarray  # (Q, C) the contract traded in the session by the minute

    def _pick(self, values: np.ndarray) -> np.ndarray:
        picked = values[self.last, np.arange(values.shape[1])]
        return np.where(self.traded, picked, np.nan)

    @property
    def close(self) -> np.ndarray:
        """Close of the last candle (the last traded price)."""
        return self._pick(self.grid.close)

    @property
    def open_interest(self) -> np.ndarray:
        """Open interest of the last candle (the last known OI of the session)."""
        return self._pick(self.grid.open_interest)

    @property
    def age_minutes(self) -> np.ndarray:
        """Whole minutes from the last candle's start to the query minute."""
        stamps = self.grid.minutes[self.last]
        return np.where(self.traded, (self.minutes[:, None] - stamps).astype(float), np.nan)

    @property
    def session_volume(self) -> np.ndarray:
        """Volume summed over the session's candles up to and including the query minute."""
        cumulative = self.grid.cumulative_volume
        upto = cumulative[self.row]
        before = np.where((self.start > 0)[:, None], cumulative[np.maximum(self.start - 1, 0)], 0)
        return np.where((self.start <= self.row)[:, None], upto - before, 0)


@dataclass(frozen=True)
class OptionLegs:
    """The partition's listed strikes and which contract is the call and the put at each.

    ``call[s]`` / ``put[s]``: contract number of the CE / PE at ``strikes[s]``, -1 if not listed.
    """

    strikes: np.ndarray
    call: np.ndarray
    put: np.ndarray

    @classmethod
    def of(cls, contracts: pd.DataFrame) -> OptionLegs:
        options = contracts[contracts["instrument_type"].isin(["CE", "PE"])]
        strikes = np.unique(options["strike_price"].to_numpy(dtype=float))
        legs = {}
        for kind in ("CE", "PE"):
            column = np.full(len(strikes), -1, dtype=np.int64)
            chosen = options[options["instrument_type"] == kind]
            column[np.searchsorted(strikes, chosen["strike_price"].to_numpy(dtype=float))] = (
                chosen.index.to_numpy()
            )
            legs[kind] = column
        return cls(strikes, legs["CE"], legs["PE"])

    def leg(self, values: np.ndarray, kind: str) -> np.ndarray:
        """``values`` (Q, C) → (Q, S): the call's or put's value at each strike (NaN if unlisted)."""
        column = self.call if kind == "CE" else self.put
        picked = values[:, np.maximum(column, 0)].astype(float)
        picked[:, column < 0] = np.nan
        return picked


def synthetic_forwards(
    chain: ChainAsOf, legs: OptionLegs, rate: float, tau: np.ndarray, max_age_minutes: int
) -> np.ndarray:
    """``forward.synthetic_forward`` (no reference level) at each of the chain's Q minutes at once.

    Same definition: strikes where both legs have a close no older than ``max_age_minutes``; the
    3 with the smallest ``|C − P|`` (ties to the lower strike); the median of
    ``K + e^{rate·tau}(C − P)`` over them. NaN where no strike qualifies or ``tau`` is NaN.
    """
    fresh = np.where(chain.age_minutes <= max_age_minutes, chain.close, np.nan)
    gap = legs.leg(fresh, "CE") - legs.leg(fresh, "PE")
    distance = np.where(np.isnan(gap), np.inf, np.abs(gap))
    nearest = np.argsort(distance, axis=1, kind="stable")[:, :STRIKES_USED]
    rows = np.arange(len(gap))[:, None]
    implied = legs.strikes[nearest] + np.exp(rate * tau)[:, None] * gap[rows, nearest]
    counted = np.isfinite(distance[rows, nearest])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no forward
        return np.nanmedian(np.where(counted, implied, np.nan), axis=1)


def atm_strikes(strikes: np.ndarray, forwards: np.ndarray) -> np.ndarray:
    """``forward.atm_strike`` for each forward: the nearest listed strike, ties to the lower."""
    if not strikes.size:
        return np.full(len(forwards), np.nan)
    distance = np.abs(strikes[None, :] - forwards[:, None])
    chosen = strikes[np.argmin(np.where(np.isnan(distance), np.inf, distance), axis=1)]
    return np.where(np.isfinite(forwards), chosen, np.nan)


def max_pains(open_interest: np.ndarray, legs: OptionLegs) -> np.ndarray:
    """``oi.max_pain`` for each of Q chains: (Q, C) OI → the listed strike of least payout."""
    if not legs.strikes.size:
        return np.full(len(open_interest), np.nan)
    call_oi = np.nan_to_num(legs.leg(open_interest, "CE"))
    put_oi = np.nan_to_num(legs.leg(open_interest, "PE"))
    settle = legs.strikes[:, None]
    call_pay = np.maximum(settle - legs.strikes[None, :], 0.0)  # (settle, strike)
    put_pay = np.maximum(legs.strikes[None, :] - settle, 0.0)
    total = call_oi @ call_pay.T + put_oi @ put_pay.T
    any_oi = (call_oi > 0).any(axis=1) | (put_oi > 0).any(axis=1)
    return np.where(any_oi, legs.strikes[np.argmin(total, axis=1)], np.nan)


def put_call_ratios(values: np.ndarray, legs: OptionLegs) -> np.ndarray:
    """``oi.pcr`` on one column for each of Q chains: Σ puts / Σ calls (NaN if no calls)."""
    calls = np.nansum(legs.leg(values, "CE"), axis=1)
    puts = np.nansum(legs.leg(values, "PE"), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(calls > 0, puts / calls, np.nan)
