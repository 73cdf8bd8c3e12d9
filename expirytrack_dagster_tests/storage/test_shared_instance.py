"""Short connections attach their file to one DuckDB instance per process: the file is really
released when a block ends, really held while it runs, shared by nested blocks, and never mixed
up with another file of the same name."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest

from expirytrack_dagster.storage import shared_instance
from expirytrack_dagster.storage.database import connect, open_connection
from expirytrack_dagster.storage.schema import (
    CURRENT_VERSION,
    SCHEMA,
    SchemaError,
    readable_names,
    table_names,
)
from expirytrack_dagster.storage.shared_instance import attached_files

# Another process opening the file with DuckDB alone (no retries): prints what it read, or the
# error DuckDB raised.
OTHER_PROCESS = """
import sys, duckdb
try:
    with duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro") as db:
        print(db.execute("SELECT count(*) FROM main.notes").fetchone()[0])
except duckdb.Error as exc:
    print("refused:", exc)
"""


def other_process_reads(path: Path, mode: str = "rw") -> str:
    done = subprocess.run(
        [sys.executable, "-c", OTHER_PROCESS, str(path), mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def key(path: Path) -> str:
    return os.path.realpath(path)


def write_notes(path: Path, *rows: str) -> None:
    with connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS main.notes (note VARCHAR)")
        for row in rows:
            db.execute("INSERT INTO main.notes VALUES (?)", [row])


def test_a_finished_block_leaves_the_file_checkpointed_and_free(tmp_path: Path) -> None:
    path = tmp_path / "expirytrack.duckdb"
    write_notes(path, "a", "b")
    assert key(path) not in attached_files()
    assert not path.with_name(path.name + ".wal").exists()  # detaching checkpointed it
    assert other_process_reads(path) == "2"  # opened for writing at once: no lock left


def test_a_running_block_holds_the_file(tmp_path: Path) -> None:
    path = tmp_path / "expirytrack.duckdb"
    write_notes(path, "a")
    with connect(path, read_only=True) as db:
        assert other_process_reads(path).startswith("refused:")
        assert db.execute("SELECT count(*) FROM notes").fetchone() == (1,)
    assert other_process_reads(path, "ro") == "1"


def test_nested_blocks_share_the_file_until_the_outer_one_ends(tmp_path: Path) -> None:
    path = tmp_path / "expirytrack.duckdb"
    write_notes(path, "a")
    with connect(path) as outer:
        with connect(path) as inner:
            inner.execute("INSERT INTO notes VALUES ('b')")
        assert outer.execute("SELECT count(*) FROM notes").fetchone() == (2,)
        outer.execute("INSERT INTO notes VALUES ('c')")
        assert attached_files() == {key(path): False}
    assert attached_files() == {}
    assert other_process_reads(path) == "3"


def test_writing_a_file_this_process_is_reading_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "expirytrack.duckdb"
    write_notes(path, "a")
    with connect(path, read_only=True) as reader:
        with (
            pytest.raises(duckdb.ConnectionException, match="open read-only in this process"),
            connect(path),
        ):
            pass
        assert reader.execute("SELECT count(*) FROM notes").fetchone() == (1,)
    write_notes(path, "b")  # the reader gone, writing works again


def test_files_of_the_same_name_stay_apart(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "expirytrack.duckdb", tmp_path / "b" / "expirytrack.duckdb"
    write_notes(first, "a")
    with connect(second, collection_schema=False) as db:
        db.execute("CREATE TABLE main.other (x INTEGER)")
    with connect(first, read_only=True) as one, connect(second, read_only=True) as two:
        assert "notes" in table_names(one) and "other" not in readable_names(one)
        assert table_names(two) == ["other"] and readable_names(two) == {"other"}
        assert one.execute(f"SELECT count(*) FROM {SCHEMA}.notes").fetchone() == (1,)
        with pytest.raises(duckdb.CatalogException):
            two.execute("SELECT * FROM notes")


def test_a_setting_stays_on_its_connection(tmp_path: Path) -> None:
    path = tmp_path / "expirytrack.duckdb"
    shown = "SELECT TIMESTAMPTZ '2025-08-01 03:45:00+00'::VARCHAR"
    with connect(path) as first, connect(path) as second:
        first.execute("SET TimeZone = 'UTC'")
        assert first.execute(shown).fetchone() == ("2025-08-01 03:45:00+00",)
        assert second.execute(shown).fetchone() == ("2025-08-01 09:15:00+05:30",)
    with connect(path) as later:
        assert later.execute(shown).fetchone() == ("2025-08-01 09:15:00+05:30",)


def test_a_block_that_fails_to_start_releases_the_file(tmp_path: Path) -> None:
    path = tmp_path / "expirytrack.duckdb"
    with connect(path) as db:  # a file made by a newer expirytrack
        db.execute(
            "INSERT INTO schema_version (version, description) VALUES (?, 'from the future')",
            [CURRENT_VERSION + 1],
        )
    with pytest.raises(SchemaError, match="newer than this expirytrack knows"), connect(path):
        pass
    assert attached_files() == {}
    assert other_process_reads(path).startswith("refused: Catalog Error")  # opened: no lock


def test_a_connection_of_its_own_is_shared_as_duckdb_shares_it(tmp_path: Path) -> None:
    """A notebook's ``open_connection`` (an instance of its own) and a call's short block on the
    same file in one process: the block uses the notebook's instance."""
    path = tmp_path / "expirytrack.duckdb"
    write_notes(path, "a")
    kept = open_connection(path, read_only=True)
    try:
        with connect(path, read_only=True) as db:
            assert db.execute("SELECT count(*) FROM notes").fetchone() == (1,)
        assert key(path) not in attached_files()
        assert kept.execute("SELECT count(*) FROM notes").fetchone() == (1,)
    finally:
        kept.close()


def test_threads_open_and_close_the_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "expirytrack.duckdb"
    write_notes(path, "a", "b", "c")
    errors: list[BaseException] = []
    counts: list[int] = []

    def read() -> None:
        try:
            for _ in range(25):
                with connect(path, read_only=True) as db:
                    counts.append(db.execute("SELECT count(*) FROM notes").fetchone()[0])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert counts == [3] * 150
    assert attached_files() == {}
    assert other_process_reads(path) == "3"


SPILL = """
import os, sys
from pathlib import Path
from expirytrack_dagster.storage.database import connect
first, second = Path(sys.argv[1]), Path(sys.argv[2])
with connect(first):
    pass
with connect(second) as db:
    print(db.execute("SELECT current_setting('temp_directory')").fetchone()[0])
"""


def test_a_large_query_spills_beside_the_file_that_started_the_instance(tmp_path: Path) -> None:
    """Where a file of its own would spill, not in ``.tmp`` of whatever folder the process runs in."""
    first, second = tmp_path / "expirytrack.duckdb", tmp_path / "live" / "2025-08-14.duckdb"
    done = subprocess.run(
        [sys.executable, "-c", SPILL, str(first), str(second)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=tmp_path / "..",
    )
    assert done.stdout.strip() == os.path.realpath(first) + ".tmp"


def _forked_child(path: str, queue: multiprocessing.Queue) -> None:
    with connect(Path(path)) as db:
        db.execute("CREATE TABLE main.notes (note VARCHAR)")
        db.execute("INSERT INTO main.notes VALUES ('from the child')")
    queue.put(attached_files())


def test_a_forked_child_starts_its_own_instance(tmp_path: Path) -> None:
    """The parent's instance (attached files, worker threads) is not the child's to use, and a
    fork while another thread holds the registry's lock does not leave the child waiting."""
    held, child_file = tmp_path / "held.duckdb", tmp_path / "child.duckdb"
    write_notes(held, "a")
    fork = multiprocessing.get_context("fork")
    queue = fork.Queue()
    with connect(held, read_only=True) as db:
        child = fork.Process(target=_forked_child, args=(str(child_file), queue))
        with shared_instance._INSTANCES_LOCK:  # as if another thread were opening a file
            child.start()
            child.join(timeout=60)
        assert child.exitcode == 0
        assert queue.get(timeout=5) == {}
        assert attached_files() == {key(held): True}
        assert db.execute("SELECT count(*) FROM notes").fetchone() == (1,)
    assert other_process_reads(child_file) == "1"
