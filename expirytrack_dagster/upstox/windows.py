"""Date windows for candle requests: inclusive spans, and a range cut into windows of a span.

How long a window may be is not decided here: ``upstox.spans`` holds what the API is proven to
answer in full, and the collection asks for windows of that span.
"""

from __future__ import annotations

from datetime import date, timedelta

from expirytrack_dagster.calendar import is_trading_day


def span_days(start: date, end: date) -> int:
    """Calendar days from ``start`` to ``end``, both inclusive."""
    return (end - start).days + 1


def split_windows(
    start: date, end: date, max_days: int, *, from_end: bool = False
) -> list[tuple[date, date]]:
    """Consecutive inclusive windows of at most ``max_days`` covering ``start``..``end``, ascending.

    ``from_end=True`` lays full windows back from ``end`` (the short one, if any, is the first):
    the last window then equals the window a span probe asked for, so a probe's answer is reused.
    Windows holding no trading day are dropped: asking for a weekend spends budget for nothing.
    """
    if max_days < 1:
        raise ValueError(f"max_days must be at least 1, got {max_days}")
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    bounds: list[tuple[date, date]] = []
    if from_end:
        stop = end
        while stop >= start:
            first = max(start, stop - timedelta(days=max_days - 1))
            bounds.append((first, stop))
            stop = first - timedelta(days=1)
        bounds.reverse()
    else:
        cursor = start
        while cursor <= end:
            stop = min(end, cursor + timedelta(days=max_days - 1))
            bounds.append((cursor, stop))
            cursor = stop + timedelta(days=1)
    return [(a, b) for a, b in bounds if _has_trading_day(a, b)]


def _has_trading_day(start: date, end: date) -> bool:
    day = start
    while day <= end:
        if is_trading_day(day):
            return True
        day += timedelta(days=1)
    return False


def day_runs(days: list[date]) -> list[tuple[date, date]]:
    """Sorted trading ``days`` grouped into runs with no *trading* day missing between them.

    A run spans weekends and holidays, so days to fetch again become as few windows as possible.
    """
    runs: list[tuple[date, date]] = []
    for day in sorted(days):
        if runs and _no_trading_day_between(runs[-1][1], day):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _no_trading_day_between(before: date, after: date) -> bool:
    day = before + timedelta(days=1)
    while day < after:
        if is_trading_day(day):
            return False
        day += timedelta(days=1)
    return True
