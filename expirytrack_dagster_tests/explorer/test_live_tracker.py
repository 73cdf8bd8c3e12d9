"""The OI tracker's live mode: the live capture's snapshots in the explorer, reloaded every minute."""

from __future__ import annotations

import math
import re
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.explorer import data
from expirytrack_dagster.explorer.server import running
from expirytrack_dagster.live.store import SnapshotStore
from expirytrack_dagster.live.view import read_history, tracker
from expirytrack_dagster.sandbox.config import SandboxConfig
from expirytrack_dagster.sandbox.state import SandboxState
from expirytrack_dagster.upstox.live import parse_option_chain
from expirytrack_dagster_tests.live.conftest import DAY, START

REPLAY = "2026-11-20 10:35"


def test_live_page_numbers_are_the_live_views(live_dir: Path) -> None:
    page = data.live_tracker_page(live_dir, "nifty", None, REPLAY, strikes=2)
    at = datetime(2026, 11, 20, 10, 35, tzinfo=IST)
    view = tracker(read_history(live_dir, "NIFTY", at), "NIFTY", 2)
    assert (page["underlying"], page["expiry"], page["at"]) == ("NIFTY", str(view.expiry), REPLAY)
    assert page["refresh_s"] is None  # a replayed minute does not reload
    assert len(page["rows"]) == len(view.rows) == 2 * 5
    for row, (_, want) in zip(page["rows"], view.rows.iterrows(), strict=True):
        assert (row["strike"], row["type"], row["atm"]) == (
            want["strike"],
            want["option_type"],
            want["is_atm"],
        )
        assert row["oi"] == want["oi"] and row["iv"] == want["iv"]
        for (chg, _), w in zip(row["changes"], view.windows, strict=True):
            theirs = want[f"oi_chg_{w}m"]
            assert (chg is None and math.isnan(theirs)) or chg == theirs
    assert page["pcr"] == view.pcr and page["max_pain"] == view.max_pain


def _today_captured(folder: Path, minutes_ago: int) -> datetime:
    """A NIFTY chain stored for the minute ``minutes_ago`` minutes before now (today's file)."""
    now = datetime.now(IST).replace(second=0, microsecond=0)
    # Never yesterday: the page reads today's file (minutes after midnight IST are shorter).
    minute = max(now - timedelta(minutes=minutes_ago), now.replace(hour=0, minute=0))
    state = SandboxState(SandboxConfig(today=DAY))
    state.live.clock.set(START + timedelta(seconds=1), speed=0)
    expiry = state.live.current_expiries("NIFTY")[0]
    chain = parse_option_chain(state.live.option_chain("NIFTY", expiry), minute, "NIFTY")
    SnapshotStore(folder, minute.date()).write_minute([("NIFTY", expiry, chain)], minute)
    return minute


def test_live_mode_serves_without_a_database_and_reloads_every_minute(tmp_path: Path) -> None:
    folder = tmp_path / "live"
    minute = _today_captured(folder, minutes_ago=2)
    with running(tmp_path / "not-collected.duckdb") as url:
        query = urlencode({"underlying": "NIFTY", "mode": "live", "strikes": 1})
        html = urllib.request.urlopen(f"{url}/tracker?{query}", timeout=30).read().decode()
        assert f'<meta http-equiv="refresh" content="{data.LIVE_REFRESH_S}">' in html
        assert f"live at {minute:%Y-%m-%d %H:%M} IST" in html
        age = re.search(r"snapshot (\d+)m (\d\d)s old", html)
        expected = (datetime.now(IST) - minute).total_seconds() // 60
        assert age is not None and expected - 1 <= int(age[1]) <= expected
        assert len(re.findall(r'<tr class="atm">', html)) == 2  # CE and PE of the ATM strike
        # A replayed minute from another day's file, and a day with none: one line, no crash.
        replay = urlencode({"underlying": "NIFTY", "mode": "live", "at": REPLAY})
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{url}/tracker?{replay}", timeout=30)
        assert missing.value.code == 400
        assert "no live snapshots for 2026-11-20" in missing.value.read().decode()


@pytest.fixture
def folder_beside(live_dir: Path, tmp_path: Path) -> Path:
    """A database path whose ``live/`` folder is the captured session (how the capture lays it out)."""
    (tmp_path / "live").symlink_to(live_dir, target_is_directory=True)
    return tmp_path / "expirytrack.duckdb"


def test_live_mode_reads_the_live_folder_beside_the_database(folder_beside: Path) -> None:
    with running(folder_beside) as url:
        replay = urlencode({"underlying": "NIFTY", "mode": "live", "at": REPLAY})
        html = urllib.request.urlopen(f"{url}/tracker?{replay}", timeout=30).read().decode()
    assert f"live at {REPLAY} IST" in html and "http-equiv" not in html
