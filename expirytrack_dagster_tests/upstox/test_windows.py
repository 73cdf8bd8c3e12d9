"""Window splitting and the persisted memory of spans that worked."""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path

import pytest

from expirytrack_dagster.upstox.windows import WindowMemory, span_days, split_windows


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


def test_memory_starts_at_setting_then_learns(tmp_path: Path) -> None:
    memory = WindowMemory(tmp_path / "spans.sqlite", {"1minute": 30})
    assert memory.start_span("h", "1minute") == 30
    memory.record_too_long("h", "1minute", 30)
    assert memory.start_span("h", "1minute") == 15  # halved until something works
    memory.record_ok("h", "1minute", 15)
    memory.record_ok("h", "1minute", 7)
    assert memory.start_span("h", "1minute") == 15  # the largest that worked
    # Another process (a new object on the same file) starts from what was learned.
    again = WindowMemory(tmp_path / "spans.sqlite", {"1minute": 30})
    assert again.start_span("h", "1minute") == 15
    assert again.start_span("other-host", "1minute") == 30


def test_memory_forgets_success_the_api_no_longer_grants(tmp_path: Path) -> None:
    memory = WindowMemory(tmp_path / "spans.sqlite", {"day": 365})
    memory.record_ok("h", "day", 300)
    memory.record_too_long("h", "day", 200)
    assert memory.learned("h", "day") == {"max_ok_days": None, "min_bad_days": 200}
    assert memory.start_span("h", "day") == 100
