"""The live tracker view: its OI changes are the differences of the stored snapshots."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from expirytrack_dagster import research
from expirytrack_dagster.calendar import IST
from expirytrack_dagster.cli import main
from expirytrack_dagster.live.store import SnapshotStore
from expirytrack_dagster.live.view import candle_tracker, read_history, tracker
from expirytrack_dagster_tests.live.conftest import DAY, START
from expirytrack_dagster_tests.research.conftest import Collected


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


def test_a_day_without_snapshots_or_candles_says_both(
    live_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["oi", "live", "NIFTY", "--at", "2026-11-19 10:39", "--live-dir", str(live_dir)]
    code = main([*argv, "--database", str(tmp_path / "none.duckdb")])
    err = capsys.readouterr().err
    assert code == 2 and "no live snapshots" in err and "no database at" in err


def test_an_expiry_never_captured_live_replays_from_its_candles(
    collected: Collected, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    at = datetime(2025, 8, 21, 11, 7, tzinfo=IST)
    view = candle_tracker("NIFTY", at, strikes_around_atm=1, database=collected.database)
    want = research.oi_tracker(
        "NIFTY", collected.expiry, at, strikes_around_atm=1, database=collected.database
    )
    assert view.source == "candles" and view.expiry == collected.expiry
    assert view.atm_strike == want.attrs["atm_strike"]
    columns = ["strike", "option_type", "oi", "is_atm", "oi_chg_5m", "oi_chg_pct_30m"]
    pd.testing.assert_frame_equal(view.rows[columns], want[columns], check_dtype=False)
    chain = research.option_chain("NIFTY", collected.expiry, at, database=collected.database)
    atm = chain[chain["is_atm"]].iloc[0]
    shown = view.rows[view.rows["is_atm"] & (view.rows["option_type"] == "CE")].iloc[0]
    assert shown["ltp"] == atm["CE_ltp"] and shown["iv"] == pytest.approx(100 * atm["CE_iv"])
    assert (
        view.pcr
        == research.pcr("NIFTY", collected.expiry, at, database=collected.database)["pcr_oi"]
    )

    argv = ["oi", "live", "nifty", "--at", "2025-08-21 11:07", "--strikes", "1"]
    code = main([*argv, "--live-dir", str(tmp_path), "--database", str(collected.database)])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(f"NIFTY {collected.expiry}  candles  2025-08-21 11:07 IST")
    assert len(out.splitlines()) == 3 + 2 * 3 + 1
