"""Vectorised helpers the rules share: IST wall-clock times of candles and per-day session bounds."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from expirytrack_dagster.calendar import day_numbers, is_verified, session_for, wall_clock_ns
from expirytrack_dagster.upstox.models import CANDLE_COLUMNS as UPSTOX_CANDLE_COLUMNS

KEY = "expired_instrument_key"
NS_PER_MINUTE = 60 * 1_000_000_000
EPOCH = date(1970, 1, 1)

CANDLE_COLUMNS: list[str] = [KEY, *UPSTOX_CANDLE_COLUMNS]
"""The stored candle columns shown in sample rows (others, e.g. ``partition_key``, are left out)."""


def day_number(day: date) -> int:
    """``day`` as int64 days since 1970-01-01, the encoding :func:`day_numbers` uses."""
    return (day - EPOCH).days


def dates_of(numbers: np.ndarray) -> np.ndarray:
    """Day numbers back to ``datetime.date`` objects, for reports."""
    return np.asarray(numbers, dtype="int64").astype("datetime64[D]").astype(object)


@dataclass(frozen=True)
class SessionTable:
    """Sessions of a sorted set of days, as parallel arrays (one slot per day).

    Non-trading days get open = close = 0, so no timestamp falls inside them.
    """

    days: np.ndarray  # int64 day numbers, sorted
    trading: np.ndarray  # bool
    open_ns: np.ndarray  # int64 wall-clock
    close_ns: np.ndarray
    kind: list[str]
    verified: np.ndarray  # bool: inside the maintained calendar's range

    def position(self, days: np.ndarray) -> np.ndarray:
        """Index of each of ``days`` in this table (each must be one of its days)."""
        return np.searchsorted(self.days, days)


def session_table(days: Iterable[date]) -> SessionTable:
    """Look up each distinct day in the project calendar (a few dozen per partition)."""
    dates = sorted(set(days))
    sessions = [session_for(day) for day in dates]

    def wall(moment: object) -> int:
        return pd.Timestamp(moment).tz_localize(None).as_unit("ns").value

    return SessionTable(
        days=np.array([day_number(day) for day in dates], dtype=np.int64),
        trading=np.array([s is not None for s in sessions], dtype=bool),
        open_ns=np.array([0 if s is None else wall(s.open) for s in sessions], dtype=np.int64),
        close_ns=np.array([0 if s is None else wall(s.close) for s in sessions], dtype=np.int64),
        kind=["" if s is None else s.kind for s in sessions],
        verified=np.array([is_verified(day) for day in dates], dtype=bool),
    )


@dataclass(frozen=True)
class CandleClock:
    """Each candle's wall-clock start, its trading date, and its day's slot in ``sessions``."""

    wall_ns: np.ndarray
    days: np.ndarray
    day_pos: np.ndarray
    sessions: SessionTable

    @property
    def in_session(self) -> np.ndarray:
        """True where the candle starts inside its day's session: open <= start < close."""
        return (self.wall_ns >= self.sessions.open_ns[self.day_pos]) & (
            self.wall_ns < self.sessions.close_ns[self.day_pos]
        )


def candle_clock(timestamps: pd.Series) -> CandleClock:
    """Place every candle on the calendar with one binary search per candle."""
    wall_ns = wall_clock_ns(timestamps)
    days = day_numbers(wall_ns)
    sessions = session_table(dates_of(pd.unique(days)))
    return CandleClock(wall_ns, days, sessions.position(days), sessions)


def contract_codes(keys: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer code per row for its contract key, and the distinct keys the codes index."""
    codes, uniques = pd.factorize(keys, sort=False)
    return codes.astype(np.int64), pd.Index(uniques)


def count_by_contract(keys: pd.Series, name: str) -> pd.DataFrame:
    """Rows per contract, most first; ties in key order so reports are stable."""
    counted = keys.value_counts().rename(name).rename_axis(KEY).reset_index()
    return counted.sort_values([name, KEY], ascending=[False, True], kind="stable")


def violation_samples(
    candles: pd.DataFrame, masks: dict[str, np.ndarray], limit: int
) -> pd.DataFrame | None:
    """The first ``limit`` offending candles, each with the names of the kinds it breaks.

    Names are joined row by row only for the few sampled rows, keeping loops off the big path.
    """
    bad = np.logical_or.reduce(list(masks.values()))
    shown = np.flatnonzero(bad)[:limit]
    if shown.size == 0:
        return None
    samples = candles.iloc[shown][CANDLE_COLUMNS].reset_index(drop=True)
    kinds = np.array(list(masks))
    flags = np.column_stack([mask[shown] for mask in masks.values()])
    samples["violations"] = [", ".join(kinds[row]) for row in flags]
    return samples
