"""Window splitting: inclusive spans, windows laid from either end, runs of days to fetch again."""

from __future__ import annotations

import itertools
from datetime import date

import pytest

from expirytrack_dagster.upstox.windows import day_runs, span_days, split_windows


def test_split_covers_range_without_overlap() -> None:
    windows = split_windows(date(2025, 5, 28), date(2025, 8, 28), 30)
    assert windows[0][0] == date(2025, 5, 28) and windows[-1][1] == date(2025, 8, 28)
    assert all(span_days(a, b) <= 30 for a, b in windows)
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert (start - end).days == 1
    assert sum(span_days(a, b) for a, b in windows) == span_days(
        date(2025, 5, 28), date(2025, 8, 28)
    )


def test_split_drops_windows_without_a_trading_day() -> None:
    # 2025-08-15 (Fri) is Independence Day, 16-17 a weekend: a 3-day window there holds no session.
    assert split_windows(date(2025, 8, 15), date(2025, 8, 17), 3) == []
    assert split_windows(date(2025, 8, 14), date(2025, 8, 19), 1) == [
        (date(2025, 8, 14), date(2025, 8, 14)),
        (date(2025, 8, 18), date(2025, 8, 18)),
        (date(2025, 8, 19), date(2025, 8, 19)),
    ]


def test_split_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        split_windows(date(2025, 1, 1), date(2025, 1, 2), 0)
    with pytest.raises(ValueError, match="after end"):
        split_windows(date(2025, 1, 2), date(2025, 1, 1), 5)


def test_split_from_the_end_puts_the_short_window_first() -> None:
    # 93 days in windows of 31 from the end: three full windows, the last ending on expiry.
    assert split_windows(date(2025, 5, 28), date(2025, 8, 28), 31, from_end=True) == [
        (date(2025, 5, 28), date(2025, 6, 27)),
        (date(2025, 6, 28), date(2025, 7, 28)),
        (date(2025, 7, 29), date(2025, 8, 28)),
    ]
    windows = split_windows(date(2025, 5, 28), date(2025, 8, 28), 24, from_end=True)
    assert windows[0] == (date(2025, 5, 28), date(2025, 6, 17))  # the 21-day remainder
    assert all(span_days(a, b) == 24 for a, b in windows[1:])
    assert windows[-1][1] == date(2025, 8, 28)


def test_day_runs_bridge_weekends_and_holidays_only() -> None:
    # 2025-08-14 Thu, (15 holiday, 16-17 weekend), 18 Mon, 19 Tue; 21 Thu after a gap on 20.
    days = [date(2025, 8, 21), date(2025, 8, 14), date(2025, 8, 18), date(2025, 8, 19)]
    assert day_runs(days) == [
        (date(2025, 8, 14), date(2025, 8, 19)),
        (date(2025, 8, 21), date(2025, 8, 21)),
    ]
    assert day_runs([]) == []
