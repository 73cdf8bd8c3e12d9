"""`expirytrack rebuild` as a user runs it (``cli.main`` in-process), the stores named by the environment."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pandas as pd

from expirytrack_dagster.storage.landing import CandleLanding, DayRecord
from expirytrack_dagster.storage.stores import disk_per_candle
from expirytrack_dagster_tests.cli_project import call_main

REPO = Path(__file__).resolve().parents[2]
KEY = "NIFTY_2025-08-28"
DAYS = [date(2025, 8, 25), date(2025, 8, 26)]


def land(root: Path) -> int:
    landing = CandleLanding(root / "landing", "1minute")
    stamps = pd.concat(
        pd.Series(pd.date_range(f"{d} 09:15", periods=375, freq="1min", tz="Asia/Kolkata"))
        for d in DAYS
    ).to_numpy()
    at = datetime(2025, 8, 29, 10, tzinfo=UTC)
    for n in range(3):
        frame = pd.DataFrame(
            {
                "timestamp": stamps,
                "open": 100.0 + n,
                "high": 101.0 + n,
                "low": 99.0 + n,
                "close": 100.5 + n,
                "volume": 75,
                "open_interest": 1000,
            }
        )
        days = dict.fromkeys(DAYS, DayRecord("complete", 30, None, at))
        landing.save(KEY, f"NSE_FO|{41000 + n}|28-08-2025", frame, days)
    return 3 * len(stamps)


def cli(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("UPSTOX_", "EXPIRYTRACK_"))},
        "EXPIRYTRACK_CONFIG": str(root / "expirytrack.yaml"),
        "EXPIRYTRACK_SOURCE": "sandbox",
        "EXPIRYTRACK_DATABASE": str(root / "db.duckdb"),
        "EXPIRYTRACK_LANDING_DIR": str(root / "landing"),
        "EXPIRYTRACK_STATE_DIR": str(root / "state"),
        "EXPIRYTRACK_CREDENTIALS_DIR": str(root / "credentials"),
        "PYTHONPATH": str(REPO),
    }
    return call_main(argv, env, root)


def test_rebuild_publishes_landed_partitions_and_says_what_it_did(tmp_path: Path) -> None:
    candles = land(tmp_path)
    done = cli(tmp_path, "rebuild", KEY)
    assert done.returncode == 0, done.stderr
    assert f"Rebuilt 1 partition(s), {candles:,} candles" in done.stdout
    assert "0 API requests" in done.stdout
    with duckdb.connect(str(tmp_path / "db.duckdb"), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM candles").fetchall() == [(candles,)]
        statuses = db.execute(
            "SELECT status, coalesce(error, ''), count(*) FROM candle_fetch_status GROUP BY ALL"
        ).fetchall()
    # The landed days are complete; the rest of the 3-month window was never fetched.
    assert {(s, e) for s, e, _ in statuses} == {("complete", ""), ("failed", "never fetched")}
    assert dict((s, n) for s, _, n in statuses)["complete"] == 3 * len(DAYS)
    db_bytes, landing_bytes, counted = disk_per_candle(tmp_path / "db.duckdb", tmp_path / "landing")
    assert counted == candles and db_bytes > 0 and landing_bytes > 0

    wrong = cli(tmp_path, "rebuild", "NIFTY_2025-09-25")
    assert wrong.returncode == 2
    assert wrong.stderr.strip().splitlines() == [
        "expirytrack rebuild: error: nothing landed for NIFTY_2025-09-25 under "
        f"{tmp_path / 'landing' / '1minute'}: rebuild only restores partitions whose candles landed"
    ]
