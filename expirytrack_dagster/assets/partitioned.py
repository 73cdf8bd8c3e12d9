"""``expiry_asset``: the one decorator shape of every asset stored per (underlying, expiry)."""

from __future__ import annotations

from typing import Any

from dagster import asset

from expirytrack_dagster.partitions import expiry_partitions
from expirytrack_dagster.storage.database import WRITER_POOL

GROUP = "expired_fno"
"""The UI group of the collection assets."""


def expiry_asset(**extra: Any) -> Any:
    """``@asset`` for a DuckDB table with one partition per (underlying, expiry).

    The IO manager replaces the partition's rows in the table (``partition_key`` column); the
    step runs in the writer pool (one DuckDB writer at a time). ``extra`` adds asset arguments
    such as ``deps``.
    """
    return asset(
        partitions_def=expiry_partitions,
        metadata={"partition_expr": "partition_key"},
        pool=WRITER_POOL,
        group_name=GROUP,
        kinds={"duckdb"},
        **extra,
    )
