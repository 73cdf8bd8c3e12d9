"""The shared lakehouse: Parquet files on a shared path, listed by a catalog in PostgreSQL.

DuckDB lets one process write a file. With a lakehouse, several machines collect at once: each
still writes its own DuckDB file (``collection.database``, its working copy) and, in the same
step, publishes the partition's rows to the lakehouse, where every machine reads them.

Publishing (:meth:`Lakehouse.publish`) writes each table's rows of the partition to a new Parquet
file under ``<lakehouse_path>/<table>/partition_key=<key>/``, then in ONE PostgreSQL transaction
swaps the catalog's file list of those (table, partition) pairs for the new files. That commit is
the only moment the data changes for readers: before it they see the old partition, after it the
new one, for every table of the step together (``candles`` and ``candle_fetch_status`` of a
partition are replaced as one). A writer that dies before the commit leaves new files nobody
lists (:meth:`Lakehouse.remove_orphans` deletes them); Postgres rolls back a commit cut short.
Writers of different partitions never wait for each other; two writers of the same partition
queue on an advisory lock, and the later one wins, as with the DuckDB file.

Reading (:meth:`Lakehouse.expose`, called by ``storage.database.open_connection`` for read-only
connections): an in-memory DuckDB connection with the local file attached read-only and, under
the usual names (``main.candles``, ``contracts`` …), views: a table the lakehouse holds reads the
Parquet files the catalog lists at that moment (one consistent list for all tables); any other
table reads the local file. So checks, the research API and exports run unchanged.

Replaced files are not deleted at once (a reader may be scanning them): they are retired, and a
later publish deletes those retired longer than :data:`RETIRED_GRACE_S` ago.

Turn it on with ``collection.lakehouse_path`` and ``collection.lakehouse_catalog_url`` (or
``EXPIRYTRACK_LAKEHOUSE_PATH`` / ``EXPIRYTRACK_LAKEHOUSE_CATALOG_URL``). The catalog tables are
created on first use. Needs ``psycopg2`` (``pip install 'expirytrack-dagster[production]'``).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import duckdb
import pyarrow.parquet as pq

LOCAL_ALIAS = "local_store"
"""The name the local DuckDB file is attached under in a lakehouse reader connection."""

SOURCE_TABLE = "store_source"
"""The local file's mark of its data source (``storage.stores``); a reader's copy comes from the
lakehouse's own mark, claimed by every publish, so real and synthetic data never mix in it."""

WHOLE_TABLE = ""
"""The catalog's partition key for a table published whole (an unpartitioned asset)."""

RETIRED_GRACE_S = 3600.0
"""Seconds a replaced file stays on disk for readers still scanning it before it is deleted."""

CATALOG_DDL = (
    """CREATE TABLE IF NOT EXISTS expirytrack_lake_tables (
        table_name TEXT PRIMARY KEY,
        first_published_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS expirytrack_lake_files (
        table_name TEXT NOT NULL,
        partition_key TEXT NOT NULL,
        path TEXT NOT NULL,
        row_count BIGINT NOT NULL,
        published_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (table_name, partition_key, path))""",
    """CREATE TABLE IF NOT EXISTS expirytrack_lake_retired (
        path TEXT PRIMARY KEY,
        retired_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS expirytrack_lake_source (
        one INTEGER PRIMARY KEY CHECK (one = 1),
        source TEXT NOT NULL,
        claimed_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
)
_DDL_LOCK = 0x6578_7472  # pg_advisory_xact_lock key serialising the catalog's CREATE TABLEs


class LakehouseError(RuntimeError):
    """The lakehouse cannot be used: catalog unreachable, driver missing, or a bad setting."""


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class Published:
    """One file a publish added: its table, partition, path (relative to the lakehouse folder,
    so machines may mount the share at different places) and rows."""

    table: str
    partition_key: str
    path: str
    rows: int


@dataclass(frozen=True)
class Lakehouse:
    """A lakehouse: Parquet files under ``path``, listed by the catalog at ``catalog_url``.

    ``catalog_url`` is a libpq URL (``postgresql://user@host:5432/db``); keep passwords out of
    it (``PGPASSWORD`` or ``~/.pgpass``). It is never printed (``repr`` hides it).
    """

    path: Path
    catalog_url: str = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path).absolute())

    # -- the catalog ------------------------------------------------------------------------

    @contextlib.contextmanager
    def catalog(self) -> Iterator[Any]:
        """A psycopg2 connection to the catalog (tables created on first use), closed on exit.

        Used as ``with lake.catalog() as db, db:`` the inner ``with`` is one transaction.
        """
        try:
            import psycopg2
        except ImportError:
            raise LakehouseError(
                "the lakehouse catalog needs psycopg2: pip install 'expirytrack-dagster[production]'"
            ) from None
        try:
            connection = psycopg2.connect(
                self.catalog_url, application_name="expirytrack-lakehouse", connect_timeout=30
            )
        except psycopg2.Error as exc:
            raise LakehouseError(
                f"cannot reach the lakehouse catalog {redact(self.catalog_url)}: "
                f"{str(exc).strip().splitlines()[0]}"
            ) from None
        try:
            _ensure_catalog(connection)
            yield connection
        finally:
            connection.close()

    # -- writing ----------------------------------------------------------------------------

    def publish(
        self,
        connection: duckdb.DuckDBPyConnection,
        tables: Sequence[str],
        partition_keys: Sequence[str] | None,
        *,
        source: str | None = None,
    ) -> list[Published]:
        """Replace the lakehouse rows of ``tables`` × ``partition_keys`` by those in ``connection``.

        With ``source`` ('upstox' or 'sandbox') the lakehouse is marked as holding it, in the
        same commit; a lakehouse holding the other source refuses (:class:`LakehouseError`).

        ``tables`` are DuckDB table names (``main.candles``); ``partition_keys`` None publishes
        the whole tables. The rows are read from ``connection`` (an open transaction sees its own
        uncommitted rows), written to new Parquet files, and made visible together by one
        catalog commit. Any error before that commit leaves the lakehouse as it was.
        """
        keys = list(partition_keys) if partition_keys is not None else [WHOLE_TABLE]
        written: list[Published] = []
        committing = False
        try:
            for table in tables:
                for key in keys:
                    written.extend(self._write_file(connection, table, key))
            with self.catalog() as catalog:
                with catalog.cursor() as cursor:
                    if source is not None:
                        self._claim(cursor, source)
                    self._commit(cursor, [t.split(".")[-1] for t in tables], keys, written)
                    expired = _take_retired(cursor, RETIRED_GRACE_S)
                committing = True
                catalog.commit()
        except BaseException:
            # A failed COMMIT may still have landed (a lost reply): then the catalog lists the
            # new files, so they stay; if it did not, remove_orphans sweeps them later.
            if not committing:
                for item in written:
                    with contextlib.suppress(OSError):
                        os.unlink(self.path / item.path)
            raise
        self._unlink(expired)  # committed: files replaced over an hour ago go now
        return written

    def _write_file(
        self, connection: duckdb.DuckDBPyConnection, table: str, key: str
    ) -> list[Published]:
        name = table.split(".")[-1]
        folder = self.path / name / f"partition_key={quote(key or '_whole', safe='')}"
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{uuid.uuid4().hex}.parquet"
        partial = final.with_suffix(".parquet.partial")
        if key == WHOLE_TABLE:
            relation = connection.sql(f"SELECT * FROM {table}")
        else:
            relation = connection.sql(
                f"SELECT * FROM {table} WHERE partition_key = ?", params=[key]
            )
        relation.write_parquet(str(partial), compression="zstd")
        rows = pq.read_metadata(partial).num_rows
        if rows == 0:
            partial.unlink()
            return []
        _fsync(partial)
        os.replace(partial, final)
        _fsync(folder)
        return [Published(name, key, final.relative_to(self.path).as_posix(), rows)]

    def _claim(self, cursor: Any, source: str) -> None:
        cursor.execute(
            "INSERT INTO expirytrack_lake_source (one, source) VALUES (1, %s) "
            "ON CONFLICT DO NOTHING",
            [source],
        )
        cursor.execute("SELECT source FROM expirytrack_lake_source")
        holds = cursor.fetchone()[0]
        if holds != source:
            raise LakehouseError(
                f"the lakehouse {self.path} holds {_describe(holds)} ({holds!r}); this run "
                f"collects {_describe(source)} ({source!r}) and will not mix them: give the "
                "run its own lakehouse (another lakehouse_path and catalog database)"
            )

    def source(self) -> tuple[str, Any] | None:
        """The source the lakehouse holds and when it was claimed, or None before any publish."""
        return self.snapshot()[1]

    @staticmethod
    def _commit(
        cursor: Any, tables: Sequence[str], keys: Sequence[str], written: Sequence[Published]
    ) -> None:
        pairs = sorted({(t, k) for t in tables for k in keys})
        for table, key in pairs:  # sorted: two writers never wait on each other in a cycle
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{table}\x1f{key}"])
        for table, key in pairs:
            if key == WHOLE_TABLE:
                cursor.execute(
                    "DELETE FROM expirytrack_lake_files WHERE table_name = %s RETURNING path",
                    [table],
                )
            else:
                cursor.execute(
                    "DELETE FROM expirytrack_lake_files WHERE table_name = %s "
                    "AND partition_key = %s RETURNING path",
                    [table, key],
                )
            for (path,) in cursor.fetchall():
                cursor.execute(
                    "INSERT INTO expirytrack_lake_retired (path) VALUES (%s) "
                    "ON CONFLICT DO NOTHING",
                    [path],
                )
            cursor.execute(
                "INSERT INTO expirytrack_lake_tables (table_name) VALUES (%s) "
                "ON CONFLICT DO NOTHING",
                [table],
            )
        for item in written:
            cursor.execute(
                "INSERT INTO expirytrack_lake_files (table_name, partition_key, path, row_count) "
                "VALUES (%s, %s, %s, %s)",
                [item.table, item.partition_key, item.path, item.rows],
            )

    # -- reading ----------------------------------------------------------------------------

    def files(self) -> dict[str, list[str]]:
        """Table → its current Parquet files (full paths under this machine's ``path``), for every
        table the lakehouse holds (one snapshot)."""
        return self.snapshot()[0]

    def snapshot(self) -> tuple[dict[str, list[str]], tuple[str, Any] | None]:
        """What a reader sees: :meth:`files` and :meth:`source`, read in one transaction."""
        with self.catalog() as catalog, catalog, catalog.cursor() as cursor:
            # One snapshot for both reads: a publish committing in between is seen by neither.
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute(
                "SELECT t.table_name, f.path FROM expirytrack_lake_tables t "
                "LEFT JOIN expirytrack_lake_files f USING (table_name) "
                "ORDER BY t.table_name, f.partition_key, f.path"
            )
            listing: dict[str, list[str]] = {}
            for table, path in cursor.fetchall():
                listing.setdefault(table, [])
                if path is not None:
                    listing[table].append(str(self.path / path))
            cursor.execute("SELECT source, claimed_at FROM expirytrack_lake_source")
            row = cursor.fetchone()
        return listing, ((str(row[0]), row[1]) if row else None)

    def partition_rows(self, table: str, partition_key: str) -> int:
        """Rows the lakehouse holds for ``table``'s partition (from the catalog, no file read)."""
        with self.catalog() as catalog, catalog, catalog.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(sum(row_count), 0) FROM expirytrack_lake_files "
                "WHERE table_name = %s AND partition_key = %s",
                [table.split(".")[-1], partition_key],
            )
            return int(cursor.fetchone()[0])

    def expose(self, connection: duckdb.DuckDBPyConnection) -> None:
        """Create the reader's views in ``connection`` (in-memory, local file attached).

        Every table of the local file gets a view of the same name in ``main``: over the
        lakehouse files when the lakehouse holds that table (typed like the local table, columns
        by name), else over the local table. ``store_source`` is a one-row table instead: the
        source the lakehouse holds (``storage.stores.recorded_source`` reads it).
        """
        listing, claimed = self.snapshot()
        local = [
            name
            for (name,) in connection.sql(
                "SELECT table_name FROM duckdb_tables() "
                "WHERE database_name = ? AND schema_name = 'main' ORDER BY table_name",
                params=[LOCAL_ALIAS],
            ).fetchall()
        ]
        for name in local:
            source = f'{LOCAL_ALIAS}.main."{name}"'
            if name == SOURCE_TABLE:
                continue
            if name not in listing:
                body = f"SELECT * FROM {source}"
            elif not listing[name]:
                body = f"SELECT * FROM {source} WHERE false"
            else:
                paths = ", ".join("'" + p.replace("'", "''") + "'" for p in listing[name])
                body = (
                    f"SELECT * FROM {source} WHERE false UNION ALL BY NAME "
                    f"SELECT * FROM read_parquet([{paths}], union_by_name = true, "
                    "hive_partitioning = false)"
                )
            connection.execute(f'CREATE VIEW main."{name}" AS {body}')
        # The source mark is a real one-row table, so code listing the tables finds it: the
        # lakehouse's own mark, else (nothing published yet) the local file's.
        connection.execute(
            f"CREATE TABLE main.{SOURCE_TABLE} (source VARCHAR NOT NULL, "
            "claimed_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)"
        )
        if claimed is not None:
            connection.execute(
                f"INSERT INTO main.{SOURCE_TABLE} VALUES (?, ?::TIMESTAMPTZ)", list(claimed)
            )
        elif SOURCE_TABLE in local:
            connection.execute(
                f"INSERT INTO main.{SOURCE_TABLE} BY NAME "
                f"SELECT source, claimed_at FROM {LOCAL_ALIAS}.main.{SOURCE_TABLE}"
            )

    # -- housekeeping -----------------------------------------------------------------------

    def remove_retired(self, grace_s: float = RETIRED_GRACE_S) -> int:
        """Delete replaced files retired more than ``grace_s`` seconds ago; return how many."""
        with self.catalog() as catalog, catalog, catalog.cursor() as cursor:
            paths = _take_retired(cursor, grace_s)
        self._unlink(paths)
        return len(paths)

    def _unlink(self, paths: Sequence[str]) -> None:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path / path)

    def remove_orphans(self, grace_s: float = RETIRED_GRACE_S) -> int:
        """Delete Parquet files no catalog row lists, older than ``grace_s`` (left by writers that
        died before their commit); return how many. Walks the whole lakehouse folder."""
        with self.catalog() as catalog, catalog, catalog.cursor() as cursor:
            cursor.execute(
                "SELECT path FROM expirytrack_lake_files "
                "UNION SELECT path FROM expirytrack_lake_retired"
            )
            listed = {path for (path,) in cursor.fetchall()}
        cutoff = time.time() - grace_s
        removed = 0
        for pattern in ("*/*/*.parquet", "*/*/*.parquet.partial"):
            for path in self.path.glob(pattern):
                relative = path.relative_to(self.path).as_posix()
                if relative not in listed and path.stat().st_mtime <= cutoff:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                        removed += 1
        return removed


def _ensure_catalog(connection: Any) -> None:
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('expirytrack_lake_source') IS NOT NULL")
        if cursor.fetchone()[0]:
            return
        # Concurrent CREATE TABLE IF NOT EXISTS can still collide in Postgres: serialise.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_DDL_LOCK])
        for statement in CATALOG_DDL:
            cursor.execute(statement)


def _take_retired(cursor: Any, grace_s: float) -> list[str]:
    """Remove from the catalog the retired files older than ``grace_s``; their paths."""
    cursor.execute(
        "DELETE FROM expirytrack_lake_retired "
        "WHERE retired_at <= now() - make_interval(secs => %s) RETURNING path",
        [grace_s],
    )
    return [path for (path,) in cursor.fetchall()]


def _describe(source: str) -> str:
    return "synthetic sandbox data" if source == "sandbox" else "real Upstox data"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- Which DuckDB files are fronted by a lakehouse -----------------------------------------

_ATTACHED: dict[str, Lakehouse] = {}


def _key(database: Path | str) -> str:
    return os.path.abspath(os.fspath(database))


def attach(database: Path | str, lakehouse: Lakehouse) -> None:
    """Front ``database`` (a collection DuckDB file) with ``lakehouse`` in this process.

    From then on its read-only connections read the lakehouse and its partition writes publish
    to it. The settings do this when ``collection.lakehouse_path`` is set. A missing file is
    created (the schema, no rows), so a machine that only reads needs nothing else.
    """
    _ATTACHED[_key(database)] = lakehouse
    if not Path(database).exists():
        from expirytrack_dagster.storage.database import open_connection

        open_connection(database).close()  # a write-open creates the file and its schema


def detach(database: Path | str) -> None:
    """Stop fronting ``database`` with a lakehouse in this process (back to the file alone)."""
    _ATTACHED.pop(_key(database), None)


def lakehouse_for(database: Path | str) -> Lakehouse | None:
    """The lakehouse fronting ``database`` in this process, or None (the default)."""
    return _ATTACHED.get(_key(database))


def publish(
    connection: duckdb.DuckDBPyConnection,
    database: Path | str,
    tables: Sequence[str],
    partition_keys: Sequence[str] | None,
    *,
    source: str | None = None,
) -> list[Published]:
    """Publish ``tables`` × ``partition_keys`` from ``connection`` when ``database`` is fronted by
    a lakehouse (see :meth:`Lakehouse.publish`); nothing otherwise."""
    lakehouse = lakehouse_for(database)
    if lakehouse is None:
        return []
    return lakehouse.publish(connection, tables, partition_keys, source=source)
