"""Which expiries the capture tracks."""

from __future__ import annotations

from datetime import date

import pytest

from expirytrack_dagster.live.targets import tracked_expiries
from expirytrack_dagster.upstox.live import CurrentExpiry

CURRENT = [
    CurrentExpiry(date(2026, 11, 24), weekly=False),
    CurrentExpiry(date(2026, 12, 1), weekly=True),
    CurrentExpiry(date(2026, 12, 8), weekly=True),
    CurrentExpiry(date(2026, 12, 29), weekly=False),
]


def test_default_is_nearest_weekly_and_current_monthly() -> None:
    picked = tracked_expiries(CURRENT)
    assert [e.expiry for e in picked] == [date(2026, 11, 24), date(2026, 12, 1)]


def test_selectors_pick_each_expiry_once_and_unknown_is_refused() -> None:
    picked = tracked_expiries(CURRENT, ["nearest", "current_monthly", "next_monthly"])
    assert [e.expiry for e in picked] == [date(2026, 11, 24), date(2026, 12, 29)]
    assert tracked_expiries([CURRENT[0]], ["nearest_weekly"]) == []
    with pytest.raises(ValueError, match="nearest_weekly"):
        tracked_expiries(CURRENT, ["weekly"])
