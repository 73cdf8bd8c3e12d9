"""The shared lakehouse: several writer processes, atomic partition replaces, killed writers.

Real PostgreSQL catalog (``postgres_dsn``), real Parquet files, real DuckDB readers. Each writer
is its own process with its own DuckDB file, as separate machines would be.
"""

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pandas as pd
import psycopg2
import pytest
from dagster import DagsterInstance, asset, materialize

from expirytrack_dagster.partitions import expiry_partitions
from expirytrack_dagster.project_settings import load_settings
from expirytrack_dagster.settings_errors import SettingsError
from expirytrack_dagster.storage.database import DatabaseLocked, connect, open_connection
from expirytrack_dagster.storage.io_manager import ExpiryTrackIOManager
from expirytrack_dagster.storage.lakehouse import (
    Lakehouse,
    LakehouseError,
    attach,
    detach,
    lakehouse_for,
)
from expirytrack_dagster.storage.stores import recorded_source
from expirytrack_dagster_tests.storage import lakehouse_writer
from expirytrack_dagster_tests.storage.lakehouse_writer import CONTRACTS, ROWS

WRITER = "expirytrack_dagster_tests.storage.lakehouse_writer"


@pytest.fixture
def lake(tmp_path: Path, postgres_dsn: str):
    """A lakehouse (shared folder + catalog) and a reader machine's (empty) DuckDB file."""
    lakehouse = Lakehouse(tmp_path / "lake", postgres_dsn)
    reader = tmp_path / "reader" / "expirytrack.duckdb"
    attach(reader, lakehouse)  # a machine that never collected: its file gets the schema only
    assert reader.exists()
    yield lakehouse, reader
    detach(reader)


def read(reader: Path) -> list[tuple]:
    """Per partition: candle rows, distinct candles, close, fetch-status rows and their counts."""
    with connect(reader, read_only=True) as db:
        candles = db.sql(
            """SELECT partition_key, count(*),
                      count(DISTINCT (expired_instrument_key, "timestamp")),
                      min(close), max(close)
               FROM main.candles GROUP BY ALL ORDER BY 1"""
        ).fetchall()
        status = dict(
            db.sql(
                "SELECT partition_key, list(candle_count ORDER BY expired_instrument_key) "
                "FROM candle_fetch_status GROUP BY ALL"
            ).fetchall()
        )
    return [(*row, status.get(row[0])) for row in candles]


def writer(root: Path, lakehouse: Lakehouse, price: float, *keys: str, rounds: int = 1):
    return subprocess.Popen(
        [
            *(sys.executable, "-m", WRITER, str(root), str(lakehouse.path)),
            *(lakehouse.catalog_url, str(price), *keys, "--rounds", str(rounds)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_writer_processes_publish_at_once_and_readers_see_both(tmp_path: Path, lake):
    lakehouse, reader = lake
    a_keys = [f"NIFTY_2025-08-{day:02d}" for day in (7, 14, 21, 28)]
    b_keys = [f"BANKNIFTY_2025-08-{day:02d}" for day in (6, 13, 20, 27)]
    # Three rounds each: every partition is published three times, the last at price + 2.
    procs = [
        writer(tmp_path / "machine_a", lakehouse, 100.0, *a_keys, rounds=3),
        writer(tmp_path / "machine_b", lakehouse, 500.0, *b_keys, rounds=3),
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert "published" in out

    rows = ROWS * len(CONTRACTS)
    expected = sorted(
        [(k, rows, rows, 102.0, 102.0, [ROWS, ROWS]) for k in a_keys]
        + [(k, rows, rows, 502.0, 502.0, [ROWS, ROWS]) for k in b_keys]
    )
    assert read(reader) == expected
    # The catalog lists one file per table and partition: nothing lost, nothing duplicated.
    files = lakehouse.files()
    assert len(files["candles"]) == len(files["candle_fetch_status"]) == 8

    # A machine that mounts the share elsewhere reads the same (the catalog's paths are
    # relative to the lakehouse folder).
    (tmp_path / "elsewhere").symlink_to(lakehouse.path)
    other = tmp_path / "other_reader" / "expirytrack.duckdb"
    attach(other, Lakehouse(tmp_path / "elsewhere", lakehouse.catalog_url))
    try:
        assert read(other) == expected
    finally:
        detach(other)


def test_a_republish_replaces_the_partition_and_retired_files_go_after_the_grace(
    tmp_path: Path, lake
):
    lakehouse, reader = lake
    machine = tmp_path / "machine"
    attach(machine / "expirytrack.duckdb", lakehouse)
    try:
        key = "NIFTY_2025-08-28"
        lakehouse_writer.publish(machine, key, 100.0)
        first = lakehouse.files()["candles"]
        assert read(reader) == [(key, 2 * ROWS, 2 * ROWS, 100.0, 100.0, [ROWS, ROWS])]

        # Landing a contract again replaces its file: now 100 candles per contract.
        lakehouse_writer.publish(machine, key, 200.0, rows=100)
        assert read(reader) == [(key, 200, 200, 200.0, 200.0, [100, 100])]
        # The replaced file stays for readers still scanning it, then goes.
        assert all(Path(p).exists() for p in first)
        assert lakehouse.remove_retired(grace_s=3600) == 0
        assert lakehouse.remove_retired(grace_s=0) == 2  # its candles and status files
        assert not any(Path(p).exists() for p in first)
        assert read(reader) == [(key, 200, 200, 200.0, 200.0, [100, 100])]
        # The writer's own file holds the same rows (it is still this machine's store).
        with connect(machine / "expirytrack.duckdb") as db:
            assert db.sql("SELECT count(*), max(close) FROM candles").fetchall() == [(200, 200.0)]
    finally:
        detach(machine / "expirytrack.duckdb")


def test_a_writer_killed_mid_publish_leaves_the_old_partition_intact(
    tmp_path: Path, lake, postgres_dsn: str
):
    lakehouse, reader = lake
    key = "NIFTY_2025-08-28"
    machine = tmp_path / "machine"
    attach(machine / "expirytrack.duckdb", lakehouse)
    try:
        lakehouse_writer.publish(machine, key, 100.0)
    finally:
        detach(machine / "expirytrack.duckdb")
    before = read(reader)
    listed = set(lakehouse.files()["candles"])

    # Another session holds the partition's publish lock, so the writer stops inside its
    # catalog transaction, its new Parquet files written: there it is killed.
    holder = psycopg2.connect(postgres_dsn)
    watcher = psycopg2.connect(postgres_dsn)
    watcher.autocommit = True  # pg_stat_activity is frozen inside a transaction
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ["candles\x1f" + key])
        proc = writer(tmp_path / "machine_b", lakehouse, 999.0, key)
        deadline = time.monotonic() + 120
        while True:
            with watcher.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND application_name = 'expirytrack-lakehouse' AND datname = current_database()"
                )
                if cursor.fetchone()[0]:
                    break
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the writer never reached its catalog commit"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        holder.rollback()
    finally:
        holder.close()
        watcher.close()

    assert read(reader) == before
    # Its files are on disk, listed nowhere; the orphan sweep removes them and only them.
    orphans = {
        str(p)
        for p in lakehouse.path.glob("*/*/*.parquet")
        if str(p)
        not in set(lakehouse.files()["candles"]) | set(lakehouse.files()["candle_fetch_status"])
    }
    assert len(orphans) == 2
    assert lakehouse.remove_orphans(grace_s=0) == 2
    assert not any(Path(p).exists() for p in orphans)
    assert set(lakehouse.files()["candles"]) == listed
    assert read(reader) == before


def test_the_settings_turn_the_lakehouse_on(tmp_path: Path):
    database = tmp_path / "expirytrack.duckdb"
    settings = load_settings(
        {"collection": {"database": str(database), "lakehouse_path": str(tmp_path / "lake")}},
        env={"EXPIRYTRACK_LAKEHOUSE_CATALOG_URL": "postgresql://expirytrack@db.example:5432/lake"},
    )
    try:
        assert database.exists()  # the schema, for the readers that open the file first
        found = lakehouse_for(settings.collection.database)
        assert found == Lakehouse(
            tmp_path / "lake", "postgresql://expirytrack@db.example:5432/lake"
        )
        assert "db.example" not in repr(found)
    finally:
        detach(database)
    assert lakehouse_for(load_settings({}, env={}).collection.database) is None


def test_a_catalog_url_with_a_password_is_refused_without_echoing_it(tmp_path: Path):
    with pytest.raises(SettingsError) as error:
        load_settings(
            {"collection": {"lakehouse_path": str(tmp_path / "lake")}},
            env={"EXPIRYTRACK_LAKEHOUSE_CATALOG_URL": "postgresql://u:s3cret@db.example/lake"},
        )
    assert "s3cret" not in str(error.value)
    assert "EXPIRYTRACK_LAKEHOUSE_CATALOG_URL holds a password" in str(error.value)
    with pytest.raises(SettingsError, match="a shared lakehouse needs both"):
        load_settings({"collection": {"lakehouse_path": str(tmp_path / "lake")}}, env={})


def test_the_lakehouse_holds_one_source_and_readers_see_its_mark(tmp_path: Path, lake):
    lakehouse, reader = lake
    sandbox, real = tmp_path / "sandbox_machine", tmp_path / "real_machine"
    for machine in (sandbox, real):
        attach(machine / "expirytrack.duckdb", lakehouse)
    try:
        lakehouse_writer.publish(sandbox, "NIFTY_2025-08-28", 100.0, source="sandbox")
        before = read(reader)
        with pytest.raises(LakehouseError, match="holds synthetic sandbox data"):
            lakehouse_writer.publish(real, "NIFTY_2025-09-30", 300.0, source="upstox")
        assert read(reader) == before
        with connect(reader, read_only=True) as db:
            assert recorded_source(db) == "sandbox"
        # The refused machine's own file rolled back too: a re-run will publish again.
        with connect(real / "expirytrack.duckdb") as db:
            assert db.sql("SELECT count(*) FROM candles").fetchall() == [(0,)]
    finally:
        for machine in (sandbox, real):
            detach(machine / "expirytrack.duckdb")


def test_a_lakehouse_reader_waits_for_the_local_writer_like_a_file_reader(lake):
    _, reader = lake
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
            " time.sleep(60)",
            str(reader),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DatabaseLocked, match="another process holds it"):
            open_connection(reader, read_only=True, lock_timeout_s=0.5)
    finally:
        holder.kill()
        holder.wait()
    with connect(reader, read_only=True) as db:
        assert db.sql("SELECT count(*) FROM candles").fetchall() == [(0,)]


def test_an_unreachable_catalog_is_one_clear_error(tmp_path: Path):
    database = tmp_path / "expirytrack.duckdb"
    attach(database, Lakehouse(tmp_path / "lake", "postgresql://expirytrack@127.0.0.1:9/lake"))
    try:
        with pytest.raises(LakehouseError, match="cannot reach the lakehouse catalog postgresql"):
            open_connection(database, read_only=True)
    finally:
        detach(database)


def test_two_writers_of_the_same_partitions_leave_one_whole_version_each(tmp_path: Path, lake):
    lakehouse, reader = lake
    keys = ["NIFTY_2025-08-28", "NIFTY_2025-09-30"]
    procs = [
        writer(tmp_path / "machine_a", lakehouse, 100.0, *keys, rounds=3),
        writer(tmp_path / "machine_b", lakehouse, 500.0, *keys, rounds=3),
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    rows = ROWS * len(CONTRACTS)
    seen = read(reader)
    assert [row[0] for row in seen] == keys
    for _, count, distinct, low, high, status in seen:
        # One writer's last round, whole: never both machines' rows, never two rounds.
        assert (count, distinct, status) == (rows, rows, [ROWS, ROWS])
        assert low == high and low in (102.0, 502.0)
    assert len(lakehouse.files()["candles"]) == len(keys)


def test_the_io_manager_publishes_partitions_and_whole_tables(tmp_path: Path, lake):
    lakehouse, reader = lake
    database = tmp_path / "machine" / "expirytrack.duckdb"
    attach(database, lakehouse)
    keys = ["NIFTY_2025-08-28", "NIFTY_2025-09-30"]
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(expiry_partitions.name, keys)
    io_manager = ExpiryTrackIOManager(database=str(database), schema="main", source="sandbox")

    def expiries(symbol: str, key: str | None = None):
        @asset(
            name="expiries",
            partitions_def=expiry_partitions if key else None,
            metadata={"partition_expr": "partition_key"} if key else None,
        )
        def _asset() -> pd.DataFrame:
            return pd.DataFrame(
                [
                    {
                        "partition_key": key or "whole",
                        "underlying_symbol": symbol,
                        "underlying_key": "NSE_INDEX|Nifty 50",
                        "expiry": date(2025, 8, 28),
                        "is_monthly": True,
                        "data_source": "sandbox",
                        "checked_at": pd.Timestamp("2025-09-01", tz="UTC"),
                    }
                ]
            )

        return _asset

    def stored() -> list[tuple]:
        with connect(reader, read_only=True) as db:
            return db.sql(
                "SELECT partition_key, underlying_symbol FROM expiries ORDER BY 1"
            ).fetchall()

    try:
        for key in keys:
            assert materialize(
                [expiries("NIFTY", key)],
                partition_key=key,
                instance=instance,
                resources={"io_manager": io_manager},
            ).success
        assert materialize(
            [expiries("BANKNIFTY", keys[0])],
            partition_key=keys[0],
            instance=instance,
            resources={"io_manager": io_manager},
        ).success
        assert stored() == [(keys[0], "BANKNIFTY"), (keys[1], "NIFTY")]
        # An unpartitioned asset replaces the whole table.
        for symbol in ("FINNIFTY", "SENSEX"):
            assert materialize(
                [expiries(symbol)], instance=instance, resources={"io_manager": io_manager}
            ).success
        assert stored() == [("whole", "SENSEX")]
        assert len(lakehouse.files()["expiries"]) == 1
        assert lakehouse.source()[0] == "sandbox"
    finally:
        detach(database)
