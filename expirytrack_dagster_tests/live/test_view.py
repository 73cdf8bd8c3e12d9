"""The live tracker view: its OI changes are the differences of the stored snapshots."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.cli import main
from expirytrack_dagster.live.store import SnapshotStore
from expirytrack_dagster.live.view import read_history, tracker
from expirytrack_dagster.sandbox.config import SandboxConfig
from expirytrack_dagster.sandbox.state import SandboxState
from expirytrack_dagster.upstox.live import parse_option_chain

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


def test_changes_are_differences_of_stored_snapshots(live_dir: Path) -> None:
    at = START + timedelta(minutes=35, seconds=30)
    history = read_history(live_dir, "NIFTY", at)
    view = tracker(history, "NIFTY", strikes_around_atm=2)
    assert view.minute == START + timedelta(minutes=35)
    assert len(view.rows) == 10 and view.rows["is_atm"].sum() == 2
    stored = SnapshotStore(live_dir, DAY).snapshots()
    stored_minutes = {ts.to_pydatetime() for ts in stored["captured_at"]}
    assert START + timedelta(minutes=20) not in stored_minutes
    stored = stored[pd.to_datetime(stored["expiry"]).dt.date == view.expiry].set_index(
        ["captured_at", "instrument_key"]
    )
    for row in view.rows.itertuples():
        now = stored.loc[(view.minute, row.instrument_key), "oi"]
        for w in (3, 5, 10, 15, 30):  # 15: 10:20 is missing, so 10:19 (as of, never filled)
            then_minute = max(m for m in stored_minutes if m <= view.minute - timedelta(minutes=w))
            then = stored.loc[(then_minute, row.instrument_key), "oi"]
            assert getattr(row, f"oi_chg_{w}m") == now - then
            if then:
                assert np.isclose(getattr(row, f"oi_chg_pct_{w}m"), 100 * (now - then) / then)
    chain = stored.xs(view.minute, level="captured_at")
    puts, calls = (chain[chain.option_type == t]["oi"].sum() for t in ("PE", "CE"))
    assert np.isclose(view.pcr, puts / calls)
    early = tracker(read_history(live_dir, "NIFTY", START + timedelta(minutes=10)), "NIFTY")
    assert early.rows["oi_chg_15m"].isna().all()  # before the capture started: unknown


def test_cli_once_prints_one_frame(live_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["oi", "live", "NIFTY", "--strikes", "1", "--at", "2026-11-20 10:35"]
    code = main([*argv, "--live-dir", str(live_dir), "--once"])
    out = capsys.readouterr().out
    assert code == 0
    assert "NIFTY 2026-11-23  live  2026-11-20 10:35 IST" in out and "max pain" in out
    assert sum(line.split()[1].endswith("*") for line in out.splitlines()[3:-1]) == 2
    assert len(out.splitlines()) == 3 + 6 + 1
    code = main(["oi", "live", "NIFTY", "--at", "2026-11-19 10:39", "--live-dir", str(live_dir)])
    assert code == 2 and "no live snapshots" in capsys.readouterr().err
