"""One window's answer turned into day records: duplicates collapsed, conflicts failed, strays dropped.

Upstox answers a window with the minutes that traded. Before anything lands:

- a candle repeated exactly (within the answer, or against candles already landed for the
  contract) is kept once and counted;
- two candles for the same minute with different values are a *conflict*: that contract-day
  is recorded ``failed`` with an error naming the contract and the minute, and none of its
  candles are kept (it is fetched again next run);
- a candle dated outside the requested window is dropped and counted (it belongs to a request
  that was not made, and cannot be judged).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pandas as pd

from expirytrack_dagster.calendar import IST, ist_days, trading_days_between
from expirytrack_dagster.storage.landing import DayRecord, drop_identical_duplicates


@dataclass
class WindowAnswer:
    """A cleaned answer: the candles to keep and a record for every trading day of the window."""

    candles: pd.DataFrame
    days: dict[date, DayRecord]
    duplicates: int = 0
    outside_window: int = 0
    conflicts: dict[date, str] = field(default_factory=dict)


def _dates(candles: pd.DataFrame) -> np.ndarray:
    return ist_days(candles["timestamp"])


def _day(day: date) -> np.datetime64:
    return np.datetime64(day, "D")


def _on(candles: pd.DataFrame, days: Iterable[date]) -> np.ndarray:
    """Which candles fall on one of ``days`` (IST dates)."""
    return np.isin(_dates(candles), [_day(d) for d in days])


def clean_answer(
    key: str,
    candles: pd.DataFrame,
    start: date,
    end: date,
    *,
    span_days: int,
    verified: bool,
    fetched_at: datetime,
) -> WindowAnswer:
    """Day records for ``start``..``end`` from one answer asked at ``span_days``.

    Days with candles are ``complete``, days without ``no_trades`` — when ``verified``; asked at
    an unverified span, every answered day is ``unconfirmed``.
    """
    outside = 0
    if not candles.empty:
        dates = _dates(candles)
        inside = (dates >= _day(start)) & (dates <= _day(end))
        outside = int((~inside).sum())
        if outside:
            candles = candles.loc[inside].reset_index(drop=True)
    candles, duplicates = drop_identical_duplicates(candles)
    conflicts: dict[date, str] = {}
    if not candles.empty:
        clash = candles["timestamp"].duplicated(keep=False)
        if clash.any():
            for stamp in sorted(candles.loc[clash, "timestamp"].unique()):
                day = pd.Timestamp(stamp).tz_convert(IST).date()
                conflicts.setdefault(
                    day,
                    f"conflicting duplicate candles for {key} at "
                    f"{pd.Timestamp(stamp).tz_convert(IST).isoformat()}: the API sent the same "
                    "minute twice with different values",
                )
            candles = candles.loc[~_on(candles, conflicts)].reset_index(drop=True)
    traded = set(np.unique(_dates(candles)).astype(object)) if not candles.empty else set()
    days: dict[date, DayRecord] = {}
    for day in trading_days_between(start, end):
        if day in conflicts:
            days[day] = DayRecord("failed", None, conflicts[day], fetched_at)
        elif not verified:
            days[day] = DayRecord("unconfirmed", span_days, None, fetched_at)
        else:
            status = "complete" if day in traded else "no_trades"
            days[day] = DayRecord(status, span_days, None, fetched_at)
    return WindowAnswer(candles, days, duplicates, outside, conflicts)


def failed_days(start: date, end: date, error: str, fetched_at: datetime) -> dict[date, DayRecord]:
    """A ``failed`` record with ``error`` for every trading day of ``start``..``end``."""
    return {
        day: DayRecord("failed", None, error, fetched_at)
        for day in trading_days_between(start, end)
    }


def merge_days(
    old_candles: pd.DataFrame,
    old_days: dict[date, DayRecord],
    answers: list[WindowAnswer],
    extra_days: dict[date, DayRecord] | None = None,
) -> tuple[pd.DataFrame, dict[date, DayRecord], int]:
    """Landed candles and records with the answered days replaced by the new answers.

    Returns the merged candles, the merged records and how many identical candles were dropped
    against what had landed.
    """
    days = dict(old_days)
    replaced: set[date] = set()
    frames = []
    for answer in answers:
        days.update(answer.days)
        replaced.update(answer.days)
        frames.append(answer.candles)
    for day, record in (extra_days or {}).items():
        # A failure never overwrites a day that had been answered before.
        if day not in days or not days[day].final:
            days[day] = record
    keep = old_candles
    if not old_candles.empty and replaced:
        keep = old_candles.loc[~_on(old_candles, replaced)]
    frames = [f for f in (keep, *frames) if not f.empty]
    if not frames:
        return old_candles.iloc[0:0], days, 0
    merged = pd.concat(frames, ignore_index=True)
    merged, dropped = drop_identical_duplicates(merged)
    return merged.sort_values("timestamp", kind="stable").reset_index(drop=True), days, dropped
