"""A tiny index for collection tests: NIFTY's calendar and prices, a handful of strikes.

Completeness is about dates and requests, not the number of strikes, so a partition of 15
contracts proves the same as NIFTY's two hundred in a fraction of the time.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from expirytrack_dagster.sandbox.profiles import UnderlyingProfile
from expirytrack_dagster_tests.pipeline import watch_underlying

TODAY = date(2025, 10, 1)
TINY_KEY = "NSE_INDEX|Tiny 50"
TINY = UnderlyingProfile.from_mapping(
    {
        "symbol": "TINY",
        "instrument_key": TINY_KEY,
        "level": 24500.0,
        "strike_step": 500,
        "lot_size": 75,
        "freeze_quantity": 1800,
        "volatility": 0.13,
        "strike_band": 0.02,
        "weekly_strike_band": 0.02,
        "max_strikes": 3,
        "weekly_max_strikes": 3,
        "liquidity": 1.0,
        "eras": [{"weekly": "THU", "monthly": "THU", "end": "2025-08-31"}],
    }
)
MONTHLY = date(2025, 8, 28)
WEEKLY = date(2025, 8, 21)


@pytest.fixture(autouse=True)
def settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Watch TINY the way a user adds an underlying: one entry in the settings file."""
    return watch_underlying(tmp_path, monkeypatch, "TINY", TINY_KEY)
