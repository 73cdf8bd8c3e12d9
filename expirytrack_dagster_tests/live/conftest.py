"""Fixtures of the live tests: a captured sandbox session, and the research tests' collected
partition (for replaying the tracker from candles). The explorer's tests reuse both."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.live.store import SnapshotStore
from expirytrack_dagster.sandbox.config import SandboxConfig
from expirytrack_dagster.sandbox.state import SandboxState
from expirytrack_dagster.upstox.live import parse_option_chain
from expirytrack_dagster_tests.research.conftest import collected

__all__ = ["DAY", "START", "collected", "live_dir"]

DAY = date(2026, 11, 20)
START = datetime(2026, 11, 20, 10, 0, tzinfo=IST)


@pytest.fixture(scope="module")
def live_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """NIFTY's two nearest expiries captured at a few minutes from 10:00 to 10:35 (10:20 not)."""
    folder = tmp_path_factory.mktemp("live")
    state = SandboxState(SandboxConfig(today=DAY))
    store = SnapshotStore(folder, DAY)
    state.live.clock.set(START, speed=0)
    expiries = state.live.current_expiries("NIFTY")[:2]
    for k in (0, 5, 10, 19, 25, 30, 32, 35):
        minute = START + timedelta(minutes=k)
        state.live.clock.set(minute + timedelta(seconds=1), speed=0)
        frames = [
            ("NIFTY", e, parse_option_chain(state.live.option_chain("NIFTY", e), minute, "NIFTY"))
            for e in expiries
        ]
        store.write_minute(frames, minute)
    return folder
