"""The explorer never waits on a collection run: a locked database is read from a copy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from expirytrack_dagster.explorer import database as explorer_database
from expirytrack_dagster.explorer.database import Reader
from expirytrack_dagster_tests.explorer.conftest import Collected

HOLD_WRITER = """
import sys, duckdb
connection = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()
"""


def test_reads_the_file_itself_when_free_and_a_snapshot_while_a_writer_holds_it(
    collected: Collected, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "expirytrack.duckdb"
    copy.write_bytes(collected.database.read_bytes())
    reader = Reader(copy)
    with reader.read() as reading:
        assert reading.snapshot_taken is None
        assert reading.synthetic
    assert reader._snapshot_dir is None  # no copy while the file is free
    monkeypatch.setattr(explorer_database, "LOCK_WAIT_S", 0.2)
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITER, str(copy)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "holding"
        with reader.read() as reading:
            assert reading.snapshot_taken is not None
            (count,) = reading.connection.execute("SELECT count(*) FROM candles").fetchone()
            assert count > 0
        snapshots = reader._snapshot_dir
        assert snapshots is not None and (snapshots / copy.name).exists()
    finally:
        writer.stdin.close()
        writer.wait(10)
        reader.close()
    assert not snapshots.exists()  # close() removes the copies
