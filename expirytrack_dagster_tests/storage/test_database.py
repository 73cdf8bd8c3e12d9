"""Opening the database: lock retries, a clear error when the lock never frees, IST display."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from expirytrack_dagster.storage.database import DatabaseLocked, connect

HOLD_LOCK = """
import sys, time, duckdb
db = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _hold(path: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_waits_for_another_writer_to_finish(tmp_path: Path) -> None:
    database = tmp_path / "db.duckdb"
    holder = _hold(database, 1.0)
    started = time.monotonic()
    with connect(database, lock_timeout_s=30) as db:
        assert db.execute("SELECT 1").fetchone() == (1,)
    assert time.monotonic() - started >= 0.5
    holder.wait()


def test_gives_up_with_a_clear_message(tmp_path: Path) -> None:
    database = tmp_path / "db.duckdb"
    holder = _hold(database, 10.0)
    try:
        with (
            pytest.raises(DatabaseLocked, match=r"another process holds it.*not even read-only"),
            connect(database, lock_timeout_s=0.5),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_sessions_show_exchange_time(tmp_path: Path) -> None:
    with connect(tmp_path / "db.duckdb") as db:
        shown = db.execute("SELECT TIMESTAMPTZ '2025-08-01 03:45:00+00'::VARCHAR").fetchone()[0]
    assert shown == "2025-08-01 09:15:00+05:30"
