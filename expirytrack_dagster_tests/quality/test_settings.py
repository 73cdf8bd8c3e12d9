"""Settings validation and the partition scope."""

from __future__ import annotations

from datetime import date

import pytest

from expirytrack_dagster.quality import PartitionScope, QualitySettings
from expirytrack_dagster.quality.settings import interval_minutes


@pytest.mark.parametrize(
    ("interval", "minutes"),
    [(1, 1), (30, 30), ("1minute", 1), ("15minute", 15), ("day", None), ("Day", None)],
)
def test_interval_minutes(interval: int | str, minutes: int | None) -> None:
    assert interval_minutes(interval) == minutes


@pytest.mark.parametrize("interval", [2, 60, "2minute", "week", True, "minute"])
def test_unsupported_intervals_are_rejected(interval: int | str) -> None:
    with pytest.raises(ValueError, match="unsupported candle interval"):
        interval_minutes(interval)


def test_scope_rejects_a_backwards_window_and_bad_interval() -> None:
    with pytest.raises(ValueError, match="after"):
        PartitionScope(date(2025, 8, 28), True, date(2025, 8, 28), date(2025, 8, 1))
    with pytest.raises(ValueError, match="unsupported"):
        PartitionScope(date(2025, 8, 28), True, date(2025, 8, 1), date(2025, 8, 28), 7)


def test_scope_last_day_stops_at_expiry() -> None:
    scope = PartitionScope(date(2025, 8, 28), True, date(2025, 8, 1), date(2025, 9, 5))
    assert scope.last_day == date(2025, 8, 28)


@pytest.mark.parametrize(
    "bad",
    [
        {"coverage_threshold": 0.0},
        {"coverage_threshold": 1.5},
        {"near_money_strikes": -1},
        {"near_money_band": 0.0},
        {"coverage_histogram_edges": (0.5, 0.25)},
    ],
)
def test_settings_are_validated(bad: dict) -> None:
    with pytest.raises(ValueError):
        QualitySettings(**bad)
