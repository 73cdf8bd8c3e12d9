"""Checks on the ``candles`` asset: every candle and completeness rule, one partition at a time.

One multi-check, so the partition's candles (millions of rows) are read once and the rules'
shared per-(contract, day) frame is built once; each rule still gets its own check in the UI.
"""

import time
from collections.abc import Iterator

from dagster import AssetCheckExecutionContext, AssetCheckResult, multi_asset_check

from expirytrack_dagster.assets.candles import candles
from expirytrack_dagster.assets.expiries import WRITER_POOL
from expirytrack_dagster.checks.partition_data import (
    load_candles,
    load_contracts,
    load_fetch_status,
    partition_scope,
)
from expirytrack_dagster.checks.results import check_result, results_by_name, rule_check_specs
from expirytrack_dagster.quality import QualitySettings, run_quality_rules
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster.storage.database import connect

CANDLE_RULES: tuple[str, ...] = (
    "ohlc_integrity",
    "candle_uniqueness",
    "session_times",
    "fetch_outcomes",
    "future_coverage",
    "future_boundary_days",
    "near_money_coverage",
    "far_strike_coverage",
    "silent_option_days",
)
"""Rules on the stored candles and fetch outcomes; the ERROR ones block downstream assets."""


@multi_asset_check(
    specs=rule_check_specs(candles.key, CANDLE_RULES),
    description="Quality rules on the partition's candles and fetch outcomes.",
    pool=WRITER_POOL,  # DuckDB: a read-only connection cannot open while another process writes
)
def candle_quality_checks(
    context: AssetCheckExecutionContext, collection: CollectionSettings
) -> Iterator[AssetCheckResult]:
    """Load the partition once, run the quality suite, report each candle rule."""
    partition_key = context.partition_key
    started = time.monotonic()
    with connect(collection.database, read_only=True) as db:
        scope = partition_scope(db, partition_key, collection)
        stored = load_candles(db, partition_key)
        listed = load_contracts(db, partition_key)
        outcomes = load_fetch_status(db, partition_key)
    loaded = time.monotonic()
    # The suite also runs the two contract rules; they are the contract checks' to report.
    results = run_quality_rules(stored, listed, outcomes, scope, QualitySettings())
    context.log.info(
        f"{partition_key}: {len(stored):,} candles loaded in {loaded - started:.1f}s, "
        f"rules ran in {time.monotonic() - loaded:.1f}s"
    )
    for result in results_by_name(results, CANDLE_RULES).values():
        yield check_result(candles.key, partition_key, result)
