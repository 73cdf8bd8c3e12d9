"""Checks on the ``candles`` asset: every registered candle rule, one partition at a time.

One multi-check, so the partition's candles (millions of rows) are read once and the rules'
shared per-(contract, day) grid is built once; each rule still gets its own check in the UI.
"""

import time
from collections.abc import Iterator

from dagster import AssetCheckExecutionContext, AssetCheckResult, multi_asset_check

from expirytrack_dagster.assets.candles import candles
from expirytrack_dagster.checks.partition_data import (
    load_candles,
    load_contracts,
    load_fetch_status,
    partition_scope,
)
from expirytrack_dagster.checks.results import asset_rules, check_result, rule_check_specs
from expirytrack_dagster.quality import PartitionData
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster.storage.database import WRITER_POOL, connect


@multi_asset_check(
    specs=rule_check_specs(candles.key),
    description="Quality rules on the partition's candles and fetch outcomes.",
    pool=WRITER_POOL,  # DuckDB: a read-only connection cannot open while another process writes
)
def candle_quality_checks(
    context: AssetCheckExecutionContext, collection: CollectionSettings
) -> Iterator[AssetCheckResult]:
    """Load the partition once, run and report each candle rule."""
    partition_key = context.partition_key
    started = time.monotonic()
    with connect(collection.database, read_only=True) as db:
        stored = load_candles(db, partition_key)
        data = PartitionData(
            scope=partition_scope(db, partition_key, collection),
            contracts=load_contracts(db, partition_key),
            candles=stored,
            fetch_status=load_fetch_status(db, partition_key),
        )
    loaded = time.monotonic()
    results = [rule.run(data) for rule in asset_rules(candles.key)]
    context.log.info(
        f"{partition_key}: {len(stored):,} candles loaded in {loaded - started:.1f}s, "
        f"rules ran in {time.monotonic() - loaded:.1f}s"
    )
    for result in results:
        yield check_result(candles.key, partition_key, result)
