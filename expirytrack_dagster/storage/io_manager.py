"""Partition writes to DuckDB, each in one transaction: the IO manager and the candle publish.

Every write here opens one connection and runs DuckDB's ``BEGIN TRANSACTION`` … ``COMMIT`` on it
(:func:`transaction`): the old rows of the partition are deleted and the new ones inserted inside
it, so readers see the old partition or the new one, never a mix, and an error (or a killed
process) before ``COMMIT`` leaves the stored partition as it was. Tables have explicit types
(``storage.schema``) and inserts go by column name, not position.

- :class:`ExpiryTrackIOManager` stores the DataFrame assets (``expiries``, ``contracts``,
  ``coverage_report``): one table per asset, named after the asset. Before a step runs (and so
  before its first API request) it checks the stores (``storage.stores``): a damaged database or
  one holding the other data source stops the run.
- :func:`publish_candles` publishes a candle partition: its ``candles`` and
  ``candle_fetch_status`` rows replaced together. The ``candles`` step calls it (both tables are
  its assets), as do ``expirytrack rebuild`` and a step stopped by a fatal error. A partition
  already published exactly as staged can be left alone (no DELETE, no INSERT, no file growth);
  when rows really were replaced, a checkpoint hands the space of the old rows back for reuse.

With a shared lakehouse (``storage.lakehouse``), each of these writes also publishes the
partition's rows of its tables there, inside the DuckDB transaction and before its ``COMMIT``:
one catalog commit makes them visible to every machine at once, and a failed publish rolls the
DuckDB write back, so a re-run publishes again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow.parquet as pq
from dagster import (
    ConfigurableIOManagerFactory,
    InputContext,
    IOManager,
    MetadataValue,
    OutputContext,
)
from pydantic import Field

from expirytrack_dagster.storage import lakehouse
from expirytrack_dagster.storage.database import connect
from expirytrack_dagster.storage.schema import SCHEMA, readable_names
from expirytrack_dagster.storage.stores import check_stores, claim_source

CANDLES_TABLE = f"{SCHEMA}.candles"
FETCH_STATUS_TABLE = f"{SCHEMA}.candle_fetch_status"


@contextmanager
def transaction(database: Path | str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A write connection to ``database`` inside one transaction: commit on success, else roll back.

    Everything run on the connection inside the ``with`` commits together or not at all. The
    caller must be the only writer (a step of the ``duckdb_writer`` pool, or no run active).
    """
    with connect(database) as connection:
        connection.execute("BEGIN TRANSACTION")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")


def insert_frame(connection: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    """Insert ``frame`` into ``table`` matching columns by name (an unknown column is an error)."""
    connection.register("_expirytrack_frame", frame)
    try:
        connection.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _expirytrack_frame")
    finally:
        # After a failed statement the transaction is aborted and unregister would raise,
        # hiding the real error; the rollback discards the view anyway.
        with contextlib.suppress(duckdb.Error):
            connection.unregister("_expirytrack_frame")


def _table_exists(connection: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".", 1)
    return name in readable_names(connection, schema)


def _partition_rows(connection: duckdb.DuckDBPyConnection, table: str, partition_key: str) -> int:
    return int(
        connection.execute(
            f"SELECT count(*) FROM {table} WHERE partition_key = ?", [partition_key]
        ).fetchall()[0][0]
    )


# -- The IO manager: DataFrame assets ------------------------------------------------------


@dataclass(frozen=True)
class _Slice:
    """Where an asset's rows live: its table, and which partitions (None: the whole table)."""

    table: str
    column: str | None
    keys: tuple[str, ...] | None

    @property
    def where(self) -> str:
        if self.keys is None:
            return ""
        return f" WHERE {self.column} IN ({', '.join('?' * len(self.keys))})"

    @property
    def params(self) -> list[str]:
        return list(self.keys or ())

    def describe(self) -> str:
        """The query that reads the slice back, as the UI shows it."""
        quoted = ", ".join("'" + k.replace("'", "''") + "'" for k in self.keys or ())
        where = f" WHERE {self.column} IN ({quoted})" if self.keys is not None else ""
        return f"SELECT * FROM {self.table}{where}"


def _slice(
    schema: str, asset_key_path: Sequence[str], partitioned: bool, keys: Sequence[str], meta: Any
) -> _Slice:
    table = f"{schema}.{asset_key_path[-1]}"
    if not partitioned:
        return _Slice(table, None, None)
    column = (meta or {}).get("partition_expr")
    if not column:
        raise ValueError(
            f"{table} is partitioned: give its asset metadata={{'partition_expr': '<column>'}}"
        )
    return _Slice(table, str(column), tuple(keys))


class PartitionTableIOManager(IOManager):
    """Writes a DataFrame over its partition's rows in one transaction; reads partitions back."""

    def __init__(self, database: str, schema: str, source: str | None) -> None:
        self.database, self.schema, self.source = database, schema, source

    def handle_output(self, context: OutputContext, obj: pd.DataFrame) -> None:
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(
                f"{context.asset_key.to_user_string()} returned {type(obj).__name__}: this IO "
                "manager stores pandas DataFrames (an asset writing its own tables returns "
                "MaterializeResult)"
            )
        where = _slice(
            self.schema,
            context.asset_key.path,
            context.has_asset_partitions,
            context.asset_partition_keys if context.has_asset_partitions else (),
            context.definition_metadata,
        )
        with transaction(self.database) as connection:
            if self.source is not None:
                claim_source(connection, self.source, f"the database {self.database}")
            connection.execute(f"DELETE FROM {where.table}{where.where}", where.params)
            insert_frame(connection, where.table, obj)
            lakehouse.publish(
                connection, self.database, [where.table], where.keys, source=self.source
            )
        context.add_output_metadata(
            {
                "dagster/row_count": MetadataValue.int(len(obj)),
                "dagster/table_name": where.table,
                "Query": where.describe(),
            }
        )

    def load_input(self, context: InputContext) -> pd.DataFrame:
        upstream = context.upstream_output
        where = _slice(
            self.schema,
            context.asset_key.path,
            context.has_asset_partitions,
            context.asset_partition_keys if context.has_asset_partitions else (),
            upstream.definition_metadata if upstream is not None else None,
        )
        if not Path(self.database).exists():
            return pd.DataFrame()
        with connect(self.database, read_only=True) as connection:
            if not _table_exists(connection, where.table):
                # Nothing was ever stored for this asset: an empty input, which the downstream
                # asset refuses with a message naming what to materialise first.
                return pd.DataFrame()
            return connection.execute(
                f"SELECT * FROM {where.table}{where.where}", where.params
            ).fetchdf()


class ExpiryTrackIOManager(ConfigurableIOManagerFactory):
    """Stores each DataFrame asset in the one DuckDB file: a typed table per asset, per partition.

    Set ``database`` to the file (default ``data/expirytrack.duckdb``). Partitioned assets name
    their partition column with ``metadata={"partition_expr": "partition_key"}``. With ``source``
    set, every step first checks the stores (``storage.stores.check_stores``) and every write
    marks the database as holding that source.
    """

    database: str = Field(description="Path to the DuckDB database.")
    schema_: str | None = Field(
        default=None, alias="schema", description="Schema of the tables (default 'main')."
    )
    source: str | None = Field(
        default=None, description="'upstox' or 'sandbox': what this database may hold."
    )
    landing_dir: str | None = Field(
        default=None, description="The landing zone, marked with the source before a run."
    )

    def create_io_manager(self, context: Any) -> PartitionTableIOManager:
        check_stores(self.database, self.landing_dir, self.source)
        return PartitionTableIOManager(self.database, self.schema_ or SCHEMA, self.source)


# -- The candle publish: candles and candle_fetch_status together --------------------------


@dataclass(frozen=True)
class StagedCandles:
    """A candle partition ready to publish: its landed Parquet files and its fetch status.

    Publishing it replaces the partition's ``candles`` rows (from the files) and its
    ``candle_fetch_status`` rows (``status``) in one transaction. ``metadata`` is what the step
    reports with it.
    """

    partition_key: str
    files: tuple[Path, ...]
    status: pd.DataFrame
    metadata: Mapping[str, Any] = field(default_factory=dict)


PUBLISHED_NEW = "new rows"
PUBLISHED_REPLACED = "replaced the stored rows"
PUBLISHED_UNCHANGED = "unchanged since the last run: nothing written"


@dataclass(frozen=True)
class Published:
    """What publishing a candle partition did: its candle rows now, and one of the PUBLISHED_*."""

    rows: int
    outcome: str


_STATUS_COLUMNS = (
    "expired_instrument_key, CAST(trading_date AS DATE), status, CAST(candle_count AS INTEGER), "
    "error, CAST(fetched_at AS TIMESTAMPTZ)"
)


def staged_rows(staged: StagedCandles) -> int:
    """The candle rows the staged files hold (read from their footers, not their data)."""
    return sum(pq.read_metadata(path).num_rows for path in dict.fromkeys(map(str, staged.files)))


def is_published(connection: duckdb.DuckDBPyConnection, staged: StagedCandles) -> bool:
    """True when the database already holds exactly this staged partition.

    Every landed day record carries the time it was fetched, so equal fetch-status rows (each
    contract-day's status, candle count, error and fetch time) and an equal candle row count
    mean the landed data has not changed since it was published.
    """
    if staged.status.empty or not _table_exists(connection, CANDLES_TABLE):
        return False
    connection.register("_expirytrack_staged_status", staged.status)
    try:
        differing = connection.execute(
            f"""SELECT count(*) FROM (
                (SELECT {_STATUS_COLUMNS} FROM {FETCH_STATUS_TABLE}
                 WHERE partition_key = $1
                 EXCEPT ALL SELECT {_STATUS_COLUMNS} FROM _expirytrack_staged_status)
                UNION ALL
                (SELECT {_STATUS_COLUMNS} FROM _expirytrack_staged_status
                 EXCEPT ALL SELECT {_STATUS_COLUMNS} FROM {FETCH_STATUS_TABLE}
                 WHERE partition_key = $1))""",
            [staged.partition_key],
        ).fetchall()[0][0]
    finally:
        connection.unregister("_expirytrack_staged_status")
    if differing:
        return False
    return _partition_rows(connection, CANDLES_TABLE, staged.partition_key) == staged_rows(staged)


def _replace(connection: duckdb.DuckDBPyConnection, staged: StagedCandles) -> None:
    """Delete the partition's candle and status rows and insert the staged ones (no commit)."""
    for table in (CANDLES_TABLE, FETCH_STATUS_TABLE):
        connection.execute(f"DELETE FROM {table} WHERE partition_key = ?", [staged.partition_key])
    if staged.files:
        connection.execute(
            f"INSERT INTO {CANDLES_TABLE} BY NAME "
            'SELECT * FROM read_parquet(?) ORDER BY expired_instrument_key, "timestamp"',
            [list(dict.fromkeys(str(path) for path in staged.files))],
        )
    insert_frame(connection, FETCH_STATUS_TABLE, staged.status)


def _publish_to_lakehouse(
    connection: duckdb.DuckDBPyConnection,
    database: Path | str,
    staged: StagedCandles,
    source: str | None,
) -> None:
    """The partition's candles and fetch status, as the open transaction sees them, to the
    lakehouse (nothing without one), both tables in one catalog commit."""
    lakehouse.publish(
        connection,
        database,
        [CANDLES_TABLE, FETCH_STATUS_TABLE],
        [staged.partition_key],
        source=source,
    )


def _lakehouse_holds(database: Path | str, staged: StagedCandles) -> bool:
    """True without a lakehouse, or when it holds the staged partition's candle rows."""
    lake = lakehouse.lakehouse_for(database)
    if lake is None:
        return True
    return lake.partition_rows(CANDLES_TABLE, staged.partition_key) == staged_rows(staged)


def publish_candles(
    database: Path | str,
    staged: StagedCandles,
    *,
    source: str | None = None,
    skip_unchanged: bool = False,
) -> Published:
    """Replace a partition's candles and fetch status in one transaction; say what was done.

    With ``source``, the database is marked as holding it (or the other source refuses, and
    nothing is written). With ``skip_unchanged``, a partition already published exactly as staged
    is not written again. Replaced rows are followed by a checkpoint that frees their space. The
    caller must be the only writer (a step of the ``duckdb_writer`` pool, or no run active).
    """
    with transaction(database) as connection:
        if source is not None:
            claim_source(connection, source, f"the database {database}")
        if skip_unchanged and is_published(connection, staged):
            if _lakehouse_holds(database, staged):
                return Published(staged_rows(staged), PUBLISHED_UNCHANGED)
            # Stored here but not (or not so) in the lakehouse: publish the stored rows there.
            _publish_to_lakehouse(connection, database, staged, source)
            return Published(staged_rows(staged), PUBLISHED_UNCHANGED)
        replaced = _partition_rows(connection, CANDLES_TABLE, staged.partition_key) > 0
        _replace(connection, staged)
        rows = _partition_rows(connection, CANDLES_TABLE, staged.partition_key)
        _publish_to_lakehouse(connection, database, staged, source)
    if replaced:
        # Old rows were deleted: a checkpoint frees their blocks for the next writes, so
        # repeated re-collection does not grow the file.
        with connect(database) as connection:
            connection.execute("CHECKPOINT")
    return Published(rows, PUBLISHED_REPLACED if replaced else PUBLISHED_NEW)


def publish_partition(database: Path | str, staged: StagedCandles) -> int:
    """Replace a partition's candles and fetch status (always); return its candle rows.

    For ``expirytrack rebuild``: :func:`publish_candles` without a source mark or a skip.
    """
    return publish_candles(database, staged).rows
