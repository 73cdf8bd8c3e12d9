"""Choosing partitions to backfill: discover an underlying's final expiries, find the missing ones.

Used by ``expirytrack partitions`` (keys for ``dagster job backfill``) and ``expirytrack backfill``
(runs them right here). Discovery adds partitions exactly as the new-expiry sensor does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, timedelta

from dagster import AssetKey, DagsterInstance

from expirytrack_dagster.expiry_listing import final_expiries
from expirytrack_dagster.partitions import (
    build_partition_key,
    expiry_partitions,
    parse_partition_key,
    split_partition_keys,
)
from expirytrack_dagster.resources import UpstoxApi


def discover(
    instance: DagsterInstance, upstox: UpstoxApi, symbol: str, delay: timedelta
) -> list[str]:
    """Add a partition for every final expiry Upstox lists for ``symbol``; return all its keys."""
    keys = [build_partition_key(symbol, d) for d in final_expiries(upstox, [symbol], delay)[symbol]]
    instance.add_dynamic_partitions(expiry_partitions.name, keys)
    return keys


def select_partitions(
    instance: DagsterInstance,
    symbol: str,
    *,
    missing: bool = False,
    start: date | None = None,
    end: date | None = None,
) -> list[str]:
    """The instance's partitions of ``symbol`` in date order, optionally only those never collected.

    "Missing" means no successful ``candles`` materialization for the partition yet. Keys that
    are not ours (see :func:`foreign_partitions`) are skipped.
    """
    ours, _ = split_partition_keys(instance.get_dynamic_partitions(expiry_partitions.name))
    keys = [key for key in ours if parse_partition_key(key).symbol == symbol]
    keys.sort(key=lambda key: parse_partition_key(key).expiry)
    if start:
        keys = [k for k in keys if parse_partition_key(k).expiry >= start]
    if end:
        keys = [k for k in keys if parse_partition_key(k).expiry <= end]
    if missing:
        done = instance.get_materialized_partitions(AssetKey("candles"))
        keys = [k for k in keys if k not in done]
    return keys


def foreign_partitions(instance: DagsterInstance) -> list[str]:
    """The instance's partition keys that are not ``SYMBOL_YYYY-MM-DD`` (added by hand in the UI)."""
    return split_partition_keys(instance.get_dynamic_partitions(expiry_partitions.name))[1]


def remove_partitions(instance: DagsterInstance, keys: Iterable[str]) -> None:
    """Delete these keys from the instance's ``underlying_expiry`` partitions (runs stay)."""
    for key in keys:
        instance.delete_dynamic_partition(expiry_partitions.name, key)


def estimate_requests(
    partitions: Iterable[str], contracts_per_partition: int, windows: int, index_windows: int = 0
) -> int:
    """Requests a backfill needs, per partition: contracts × windows candle requests, 3 listing
    calls, and ``index_windows`` requests for the underlying's own candles (``index_candles``)."""
    return sum(contracts_per_partition * windows + 3 + index_windows for _ in partitions)


def describe_budget(requests: int, per_30_minutes: int) -> str:
    """How long ``requests`` take when the 30-minute window binds, in words."""
    minutes = math.ceil(requests / per_30_minutes) * 30 if requests > per_30_minutes else 0
    if minutes == 0:
        return "within one 30-minute window"
    return f"about {minutes // 60}h {minutes % 60:02d}m at {per_30_minutes} requests / 30 min"
