"""The DuckDB IO manager: dagster-duckdb's, with every partition write in one transaction.

dagster-duckdb writes a partition as DELETE-then-INSERT on separate statements; a crash between
them leaves the partition half gone. Here the connection is opened inside a transaction that
commits only when the whole write succeeded, so readers see the old partition or the new one,
never a mix. Tables are created with explicit types (``storage.schema``) rather than inferred from
the first DataFrame, and inserts go by column name, not position.

Before a step runs (and so before its first API request) the stores are checked
(``storage.stores``): a damaged database or one holding the other data source stops the run.
A candle partition whose landed data is already published exactly as staged is not written again
(no DELETE, no INSERT, no file growth); when rows really were replaced, a checkpoint hands the
space of the old rows back for reuse.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow.parquet as pq
from dagster import InputContext, MetadataValue, OutputContext
from dagster._core.definitions.metadata.metadata_set import TableMetadataSet
from dagster._core.errors import DagsterInvalidMetadata
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TableSlice
from dagster_duckdb import DuckDBIOManager
from dagster_duckdb.io_manager import DuckDbClient
from pydantic import Field

from expirytrack_dagster.storage.database import connect
from expirytrack_dagster.storage.schema import SCHEMA, create_tables
from expirytrack_dagster.storage.stores import check_stores, claim_source


class TransactionalDuckDbClient(DuckDbClient):
    """Opens the project's database inside a transaction; commit on success, roll back on error."""

    @staticmethod
    @contextmanager
    def connect(
        context: OutputContext | InputContext, _: TableSlice
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        with connect(context.resource_config["database"]) as connection:
            connection.execute("BEGIN TRANSACTION")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    @staticmethod
    def ensure_schema_exists(
        context: OutputContext, table_slice: TableSlice, connection: duckdb.DuckDBPyConnection
    ) -> None:
        create_tables(connection)


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


def _table(table_slice: TableSlice) -> str:
    return f"{table_slice.schema}.{table_slice.table}"


class DataFrameHandler(DbTypeHandler[pd.DataFrame]):
    """Writes a pandas DataFrame into its typed table by column name; loads one back."""

    def handle_output(
        self,
        context: OutputContext,
        table_slice: TableSlice,
        obj: pd.DataFrame,
        connection: duckdb.DuckDBPyConnection,
    ) -> Mapping[str, Any]:
        insert_frame(connection, _table(table_slice), obj)
        return {"dagster/row_count": len(obj)}

    def load_input(
        self, context: InputContext, table_slice: TableSlice, connection: duckdb.DuckDBPyConnection
    ) -> pd.DataFrame:
        exists = connection.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
            [table_slice.schema, table_slice.table],
        ).fetchone()[0]
        if not exists:
            # Nothing was ever stored for this asset: an empty input, which the downstream
            # asset refuses with a message naming what to materialise first.
            return pd.DataFrame()
        return connection.execute(DuckDbClient.get_select_statement(table_slice)).fetchdf()

    @property
    def supported_types(self) -> Sequence[type[object]]:
        return [pd.DataFrame]


@dataclass(frozen=True)
class StagedCandles:
    """The candles asset's output: a partition's landed Parquet files and its fetch status.

    Publishing it inserts every file's rows and the status rows in the same transaction.
    """

    partition_key: str
    files: tuple[Path, ...]
    status: pd.DataFrame
    metadata: Mapping[str, Any]


def publish_staged(connection: duckdb.DuckDBPyConnection, table: str, staged: StagedCandles) -> int:
    """Insert a partition's landed candles and its status; return the partition's candle rows.

    Call inside the transaction that deleted the partition's old rows (the IO manager does).
    """
    if staged.files:
        connection.execute(
            f"INSERT INTO {table} BY NAME "
            'SELECT * FROM read_parquet(?) ORDER BY expired_instrument_key, "timestamp"',
            [list(dict.fromkeys(str(path) for path in staged.files))],
        )
    rows = connection.execute(
        f"SELECT count(*) FROM {table} WHERE partition_key = ?", [staged.partition_key]
    ).fetchone()[0]
    connection.execute(
        f"DELETE FROM {SCHEMA}.candle_fetch_status WHERE partition_key = ?",
        [staged.partition_key],
    )
    insert_frame(connection, f"{SCHEMA}.candle_fetch_status", staged.status)
    return int(rows)


def publish_partition(database: Path | str, staged: StagedCandles) -> int:
    """Replace a partition's candles and fetch status in one transaction, outside a Dagster output.

    For ``expirytrack rebuild`` (and a step that stops on a fatal error): returns the partition's
    candle rows. Replaced rows are followed by a checkpoint that frees their space. The caller
    must be the only writer (a step of the ``duckdb_writer`` pool, or no run active).
    """
    table = f"{SCHEMA}.candles"
    with connect(database) as connection:
        connection.execute("BEGIN TRANSACTION")
        try:
            create_tables(connection)
            replaced = _has_rows(connection, table, staged.partition_key)
            connection.execute(
                f"DELETE FROM {table} WHERE partition_key = ?", [staged.partition_key]
            )
            rows = publish_staged(connection, table, staged)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        if replaced:
            connection.execute("CHECKPOINT")
    return rows


_STATUS_COLUMNS = (
    "expired_instrument_key, CAST(trading_date AS DATE), status, CAST(candle_count AS INTEGER), "
    "error, CAST(fetched_at AS TIMESTAMPTZ)"
)


def staged_rows(staged: StagedCandles) -> int:
    """The candle rows the staged files hold (read from their footers, not their data)."""
    return sum(pq.read_metadata(path).num_rows for path in dict.fromkeys(map(str, staged.files)))


def is_published(connection: duckdb.DuckDBPyConnection, table: str, staged: StagedCandles) -> bool:
    """True when the database already holds exactly this staged partition.

    Every landed day record carries the time it was fetched, so equal fetch-status rows (each
    contract-day's status, candle count, error and fetch time) and an equal candle row count
    mean the landed data has not changed since it was published.
    """
    exists = connection.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
        [SCHEMA, table.rsplit(".", 1)[-1]],
    ).fetchall()[0][0]
    if not exists or staged.status.empty:
        return False
    connection.register("_expirytrack_staged_status", staged.status)
    try:
        differing = connection.execute(
            f"""SELECT count(*) FROM (
                (SELECT {_STATUS_COLUMNS} FROM {SCHEMA}.candle_fetch_status
                 WHERE partition_key = $1
                 EXCEPT ALL SELECT {_STATUS_COLUMNS} FROM _expirytrack_staged_status)
                UNION ALL
                (SELECT {_STATUS_COLUMNS} FROM _expirytrack_staged_status
                 EXCEPT ALL SELECT {_STATUS_COLUMNS} FROM {SCHEMA}.candle_fetch_status
                 WHERE partition_key = $1))""",
            [staged.partition_key],
        ).fetchall()[0][0]
    finally:
        connection.unregister("_expirytrack_staged_status")
    if differing:
        return False
    rows = connection.execute(
        f"SELECT count(*) FROM {table} WHERE partition_key = ?", [staged.partition_key]
    ).fetchall()[0][0]
    return int(rows) == staged_rows(staged)


class StagedCandlesHandler(DbTypeHandler[StagedCandles]):
    """Publishes landed candle files straight from Parquet, sorted for zone-map pruning."""

    def handle_output(
        self,
        context: OutputContext,
        table_slice: TableSlice,
        obj: StagedCandles,
        connection: duckdb.DuckDBPyConnection,
    ) -> Mapping[str, Any]:
        rows = publish_staged(connection, _table(table_slice), obj)
        return {**obj.metadata, "dagster/row_count": MetadataValue.int(rows)}

    def load_input(
        self, context: InputContext, table_slice: TableSlice, connection: duckdb.DuckDBPyConnection
    ) -> StagedCandles:
        raise TypeError("load candles as a pandas DataFrame (annotate the input pd.DataFrame)")

    @property
    def supported_types(self) -> Sequence[type[object]]:
        return [StagedCandles]


class PublishingDbIOManager(DbIOManager):
    """``DbIOManager`` that marks the database's source and skips already-published partitions."""

    def __init__(self, *, source: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._source = source

    def handle_output(self, context: OutputContext, obj: object) -> None:
        if obj is None:
            super().handle_output(context, obj)  # Dagster's error for an unexpected None
            return
        self._check_supported_type(type(obj))
        table_slice = self._get_table_slice(context, context)
        table = _table(table_slice)
        replaced = False
        with self._db_client.connect(context, table_slice) as connection:
            self._db_client.ensure_schema_exists(context, table_slice, connection)
            if self._source is not None:
                claim_source(connection, self._source, f"the database {self._database}")
            if isinstance(obj, StagedCandles) and is_published(connection, table, obj):
                metadata: Mapping[str, Any] = {
                    **obj.metadata,
                    "dagster/row_count": MetadataValue.int(staged_rows(obj)),
                    "published": "unchanged since the last run: nothing written",
                }
            else:
                if isinstance(obj, StagedCandles):
                    replaced = _has_rows(connection, table, obj.partition_key)
                self._db_client.delete_table_slice(context, table_slice, connection)
                handler = self._resolve_handler(type(obj))
                metadata = handler.handle_output(context, table_slice, obj, connection) or {}
                if isinstance(obj, StagedCandles):
                    metadata = {
                        **metadata,
                        "published": "replaced the stored rows" if replaced else "new rows",
                    }
        if replaced:
            # Old rows were deleted: a checkpoint frees their blocks for the next writes, so
            # repeated re-collection does not grow the file.
            with connect(self._database) as connection:
                connection.execute("CHECKPOINT")
        context.add_output_metadata(
            {**metadata, "Query": self._db_client.get_select_statement(table_slice)}
        )
        with contextlib.suppress(DagsterInvalidMetadata):
            context.add_output_metadata(
                dict(TableMetadataSet(table_name=self._db_client.get_table_name(table_slice)))
            )


def _has_rows(connection: duckdb.DuckDBPyConnection, table: str, partition_key: str) -> bool:
    try:
        return bool(
            connection.execute(
                f"SELECT count(*) FROM {table} WHERE partition_key = ?", [partition_key]
            ).fetchall()[0][0]
        )
    except duckdb.CatalogException:
        return False


class ExpiryTrackIOManager(DuckDBIOManager):
    """Stores every asset in the one DuckDB file, one typed table per asset, per partition.

    Set ``database`` to the file (default ``data/expirytrack.duckdb``). Assets name their partition
    column with ``metadata={"partition_expr": "partition_key"}``. With ``source`` set, every step
    first checks the stores (``storage.stores.check_stores``) and every write marks the database
    as holding that source.
    """

    source: str | None = Field(
        default=None, description="'upstox' or 'sandbox': what this database may hold."
    )
    landing_dir: str | None = Field(
        default=None, description="The landing zone, marked with the source before a run."
    )

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [DataFrameHandler(), StagedCandlesHandler()]

    @staticmethod
    def default_load_type() -> type | None:
        return pd.DataFrame

    def create_io_manager(self, context: Any) -> DbIOManager:
        check_stores(self.database, self.landing_dir, self.source)
        return PublishingDbIOManager(
            source=self.source,
            db_client=TransactionalDuckDbClient(),
            database=self.database,
            schema=self.schema_ or SCHEMA,
            type_handlers=self.type_handlers(),
            default_load_type=self.default_load_type(),
            io_manager_name="ExpiryTrackIOManager",
        )
