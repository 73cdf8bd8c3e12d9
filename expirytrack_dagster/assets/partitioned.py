"""The one shape of every asset stored per (underlying, expiry): ``expiry_asset`` and ``expiry_table_spec``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dagster import AssetKey, AssetSpec, asset

from expirytrack_dagster.partitions import expiry_partitions
from expirytrack_dagster.storage.database import WRITER_POOL

GROUP = "expired_fno"
"""The UI group of the collection assets."""


def _table_fields() -> dict[str, Any]:
    """A DuckDB table with one partition per (underlying, expiry), rows keyed by ``partition_key``."""
    return {
        "partitions_def": expiry_partitions,
        "metadata": {"partition_expr": "partition_key"},
        "group_name": GROUP,
        "kinds": {"duckdb"},
    }


def expiry_asset(**extra: Any) -> Any:
    """``@asset`` for a DuckDB table with one partition per (underlying, expiry).

    The IO manager replaces the partition's rows in the table (``partition_key`` column); the
    step runs in the writer pool (one DuckDB writer at a time). ``extra`` adds asset arguments
    such as ``deps``.
    """
    return asset(pool=WRITER_POOL, **_table_fields(), **extra)


def expiry_table_spec(key: AssetKey, description: str, deps: Sequence[str]) -> AssetSpec:
    """One table of a multi-asset step, in the same shape as ``expiry_asset``'s (the step itself
    names ``pool=WRITER_POOL``)."""
    return AssetSpec(key, description=description, deps=deps, **_table_fields())
