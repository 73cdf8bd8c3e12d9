"""The one place that opens the DuckDB database: path, time zone, memory limit, lock retries, schema.

DuckDB allows one writing process per file. Writers are serialised by the ``duckdb_writer``
concurrency pool (see ``data/dagster_home/dagster.yaml``); a connection that still meets the lock
(a notebook holding the file, a run outside the pool) is retried with backoff rather than failing.

A connection opened for writing first brings the schema to the current version
(``storage.schema.migrate``): a database made by an earlier expirytrack is upgraded in place on its
first open, never recreated. Read-only connections see the file as it is.

With a shared lakehouse (``storage.lakehouse``, ``collection.lakehouse_path``), a read-only
connection is an in-memory one with the file attached and the lakehouse's tables as views under
the same names; the file is still where this machine writes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from expirytrack_dagster.storage.lakehouse import LOCAL_ALIAS, lakehouse_for
from expirytrack_dagster.storage.schema import migrate

DEFAULT_DATABASE = Path("data/expirytrack.duckdb")
DEFAULT_MEMORY_LIMIT = "4GB"

WRITER_POOL = "duckdb_writer"
"""The Dagster pool of every step that opens the DuckDB file (limit 1: DuckDB allows one writer
per file, and a reader cannot open it while another process writes)."""


class DatabaseLocked(RuntimeError):
    """The database file stayed locked by another process for the whole retry budget."""


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text or "conflicting" in text or "being used by another" in text


def open_connection(
    path: Path | str,
    *,
    read_only: bool = False,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    lock_timeout_s: float = 300.0,
    collection_schema: bool = True,
) -> duckdb.DuckDBPyConnection:
    """Open ``path`` (creating its folder), retrying while another process holds the lock.

    For writing a collection database, the schema is migrated to the current version first
    (``SchemaError`` when the file was made by a newer expirytrack); ``collection_schema=False``
    opens another kind of file (a live snapshot file) without it. When a lakehouse fronts
    ``path`` (``storage.lakehouse.attach``), a read-only connection reads the lakehouse.
    """
    path = Path(path)
    lakehouse = lakehouse_for(path) if read_only else None
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_timeout_s
    delay = 0.05
    while True:
        try:
            connection = _connect(path, read_only, memory_limit, lakehouse is not None)
            break
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            if not _is_lock_error(exc) or time.monotonic() >= deadline:
                if _is_lock_error(exc):
                    wants = "read" if read_only else "write"
                    raise DatabaseLocked(
                        f"could not open {path} to {wants} for {lock_timeout_s:.0f}s: another "
                        "process holds it. DuckDB lets one process write a file, and while it "
                        "does no other process may open it, not even read-only; a writer must "
                        "likewise wait for every other process (read-only ones included) to "
                        "close it. Close other connections (notebooks, duckdb shells) or wait "
                        "for the running write."
                    ) from None
                raise
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 2.0)
    connection.execute("SET TimeZone = 'Asia/Kolkata'")
    if lakehouse is not None:
        try:
            lakehouse.expose(connection)
        except BaseException:
            connection.close()
            raise
    if not read_only and collection_schema:
        try:
            migrate(connection)
        except BaseException:
            connection.close()
            raise
    return connection


def _connect(
    path: Path, read_only: bool, memory_limit: str, in_memory: bool
) -> duckdb.DuckDBPyConnection:
    config = {"memory_limit": memory_limit, "custom_user_agent": "expirytrack"}
    if not in_memory:
        return duckdb.connect(str(path), read_only=read_only, config=config)
    # A lakehouse reader: views in an in-memory database over the lakehouse and the file.
    connection = duckdb.connect(":memory:", config=config)
    try:
        quoted = str(path).replace("'", "''")
        connection.execute(f"ATTACH '{quoted}' AS {LOCAL_ALIAS} (READ_ONLY)")
    except BaseException:
        connection.close()
        raise
    return connection


@contextmanager
def connect(
    path: Path | str, *, read_only: bool = False, lock_timeout_s: float = 300.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection, closed on exit. Keep write connections short: one writer per file."""
    connection = open_connection(path, read_only=read_only, lock_timeout_s=lock_timeout_s)
    try:
        yield connection
    finally:
        connection.close()
