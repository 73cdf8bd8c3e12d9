"""The DuckDB IO manager: dagster-duckdb's, with every partition write in one transaction.

dagster-duckdb writes a partition as DELETE-then-INSERT on separate statements; a crash between
them leaves the partition half gone. Here the connection is opened inside a transaction that
commits only when the whole write succeeded, so readers see the old partition or the new one,
never a mix. Tables are created with explicit types (``storage.schema``) rather than inferred from
the first DataFrame, and inserts go by column name, not position.
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
from dagster import InputContext, MetadataValue, OutputContext
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TableSlice
from dagster_duckdb import DuckDBIOManager
from dagster_duckdb.io_manager import DuckDbClient

from expirytrack_dagster.storage.database import connect
from expirytrack_dagster.storage.schema import SCHEMA, create_tables


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
            [[str(path) for path in staged.files]],
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


class ExpiryTrackIOManager(DuckDBIOManager):
    """Stores every asset in the one DuckDB file, one typed table per asset, per partition.

    Set ``database`` to the file (default ``data/expirytrack.duckdb``). Assets name their partition
    column with ``metadata={"partition_expr": "partition_key"}``.
    """

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [DataFrameHandler(), StagedCandlesHandler()]

    @staticmethod
    def default_load_type() -> type | None:
        return pd.DataFrame

    def create_io_manager(self, context: Any) -> DbIOManager:
        return DbIOManager(
            db_client=TransactionalDuckDbClient(),
            database=self.database,
            schema=self.schema_ or SCHEMA,
            type_handlers=self.type_handlers(),
            default_load_type=self.default_load_type(),
            io_manager_name="ExpiryTrackIOManager",
        )
