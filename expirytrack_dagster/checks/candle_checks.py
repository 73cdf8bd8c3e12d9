"""Checks on the ``candles`` asset: every registered candle rule, one partition at a time.

One multi-check, so the partition's candles (millions of rows) are read once and the rules'
shared per-(contract, day) grid is built once; each rule still gets its own check in the UI.
"""

import duckdb

from expirytrack_dagster.assets.candles import CANDLE_FETCH_STATUS, CANDLES
from expirytrack_dagster.checks.partition_data import (
    load_candles,
    load_contracts,
    load_fetch_status,
    partition_scope,
)
from expirytrack_dagster.checks.rule_checks import rule_checks
from expirytrack_dagster.quality import PartitionData
from expirytrack_dagster.settings import CollectionSettings


def load_candle_rule_data(
    db: duckdb.DuckDBPyConnection, partition_key: str, collection: CollectionSettings
) -> PartitionData:
    """The partition's scope, contracts, candles and fetch outcomes."""
    return PartitionData(
        scope=partition_scope(db, partition_key, collection),
        contracts=load_contracts(db, partition_key),
        candles=load_candles(db, partition_key),
        fetch_status=load_fetch_status(db, partition_key),
    )


candle_quality_checks = rule_checks(
    "candle_quality_checks",
    CANDLES,
    "Quality rules on the partition's candles and fetch outcomes.",
    load_candle_rule_data,
    reads=[CANDLE_FETCH_STATUS],
)
