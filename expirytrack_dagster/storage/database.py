"""The one place that opens the DuckDB database: path, time zone, memory limit, lock retries, schema.

DuckDB allows one writing process per file. Writers are serialised by the ``duckdb_writer``
concurrency pool (see ``data/dagster_home/dagster.yaml``); a connection that still meets the lock
(a notebook holding the file, a run outside the pool) is retried with backoff rather than failing.

A connection opened for writing first brings the schema to the current version
(``storage.schema.migrate``): a database made by an earlier expirytrack is upgraded in place on its
first open, never recreated. Read-only connections see the file as it is.

A short connection (``connect``) attaches the file to one DuckDB instance per process
(``storage.shared_instance``) rather than starting an instance of its own.

With a shared lakehouse (``storage.lakehouse``, ``collection.lakehouse_path``), a read-only
connection is an in-memory one with the file attached and the lakehouse's tables as views under
the same names; the file is still where this machine writes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from expirytrack_dagster.storage.lakehouse import LOCAL_ALIAS, Lakehouse, lakehouse_for
from expirytrack_dagster.storage.schema import migrate
from expirytrack_dagster.storage.shared_instance import shared_instance

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
    """Open ``path`` in a DuckDB instance of its own (creating its folder), retrying while another
    process holds the lock. For a connection kept open (a notebook's); short ones use ``connect``.

    For writing a collection database, the schema is migrated to the current version first
    (``SchemaError`` when the file was made by a newer expirytrack); ``collection_schema=False``
    opens another kind of file (a live snapshot file) without it. When a lakehouse fronts
    ``path`` (``storage.lakehouse.attach``), a read-only connection reads the lakehouse.
    """
    path = Path(path)
    lakehouse = lakehouse_for(path) if read_only else None
    return _prepared(
        path,
        read_only,
        lock_timeout_s,
        lambda: _connect(path, read_only, memory_limit, lakehouse is not None),
        lakehouse,
        collection_schema,
    )


@contextmanager
def connect(
    path: Path | str,
    *,
    read_only: bool = False,
    lock_timeout_s: float = 300.0,
    collection_schema: bool = True,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection, closed on exit. Keep write connections short: one writer per file.

    The file is attached to this process's DuckDB instance (``storage.shared_instance``) for the
    block, about 1 ms against 15 ms for an instance of its own, and detached (checkpointed, its
    lock freed) when the block ends. Where this process already holds the file in an instance
    of its own (an ``open_connection``), the block shares that instance, as DuckDB shares it;
    a lakehouse reader gets an instance of its own. Otherwise as ``open_connection``.
    """
    path = Path(path)
    if read_only and lakehouse_for(path) is not None:
        with open_connection(
            path, read_only=True, lock_timeout_s=lock_timeout_s, collection_schema=collection_schema
        ) as connection:
            yield connection
        return
    shared = shared_instance(_config(DEFAULT_MEMORY_LIMIT), path)
    attached = False

    def attach() -> duckdb.DuckDBPyConnection:
        nonlocal attached
        try:
            cursor = shared.open(path, read_only=read_only)
        except duckdb.ResourceInUseException:
            # Held by an instance of its own in this process: share it, as DuckDB does.
            return _connect(path, read_only, DEFAULT_MEMORY_LIMIT, False)
        attached = True
        return cursor

    try:
        connection = _prepared(path, read_only, lock_timeout_s, attach, None, collection_schema)
    except BaseException:
        if attached:  # opened, then its schema or time zone failed: closed already
            shared.release(path)
        raise
    try:
        yield connection
    finally:
        try:
            connection.close()
        finally:
            if attached:
                shared.release(path)


def _prepared(
    path: Path,
    read_only: bool,
    lock_timeout_s: float,
    opener: Callable[[], duckdb.DuckDBPyConnection],
    lakehouse: Lakehouse | None,
    collection_schema: bool,
) -> duckdb.DuckDBPyConnection:
    """``opener()`` retried while another process holds the lock, then made ready: IST session
    time zone, the lakehouse's views for its reader, the schema migrated for a writer."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_timeout_s
    delay = 0.05
    while True:
        try:
            connection = opener()
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
    try:
        connection.execute("SET TimeZone = 'Asia/Kolkata'")
        if lakehouse is not None:
            lakehouse.expose(connection)
        if not read_only and collection_schema:
            migrate(connection)
    except BaseException:
        connection.close()
        raise
    return connection


def _config(memory_limit: str) -> dict[str, str]:
    return {"memory_limit": memory_limit, "custom_user_agent": "expirytrack"}


def _connect(
    path: Path, read_only: bool, memory_limit: str, in_memory: bool
) -> duckdb.DuckDBPyConnection:
    config = _config(memory_limit)
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
