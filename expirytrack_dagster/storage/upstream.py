"""Refusing to materialise a partition whose upstream rows were never stored.

The Dagster UI lets a user materialise any one asset of a partition. Run alone on a partition
whose upstream never ran, an asset would write nothing and still turn the partition green.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
from dagster import Failure

from expirytrack_dagster.storage.database import connect
from expirytrack_dagster.storage.schema import SCHEMA


def upstream_rows(database: Path | str, table: str, partition_key: str) -> int:
    """Rows ``table`` holds for ``partition_key`` (0 when the file or table does not exist)."""
    if not Path(database).exists():
        return 0
    with connect(database, read_only=True) as db:
        try:
            (rows,) = db.execute(
                f"SELECT count(*) FROM {SCHEMA}.{table} WHERE partition_key = ?", [partition_key]
            ).fetchone()
        except duckdb.CatalogException:
            return 0
    return int(rows)


def require_upstream_row(database: Path | str, table: str, partition_key: str, asset: str) -> None:
    """Fail before any request or write when ``table`` has nothing for the partition."""
    if upstream_rows(database, table, partition_key):
        return
    symbol = partition_key.rsplit("_", 1)[0]
    raise Failure(
        description=(
            f"`{table}` has nothing stored for {partition_key}, so `{asset}` cannot run alone: "
            f"materialise `{table}` first (select all three assets of the partition, or run "
            f"`expirytrack backfill {symbol}`). Nothing was written."
        )
    )
