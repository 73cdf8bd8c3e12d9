"""Checks on the ``contracts`` asset: every registered contract rule, one partition at a time.

Separate from the candle checks because they must run between ``contracts`` and ``candles``: a
blocking failure here stops ``candles`` before it spends the API budget on a broken contract
list. (One multi-check over both assets could not do that: it would need the candles first.)
"""

from collections.abc import Iterator

from dagster import AssetCheckExecutionContext, AssetCheckResult, multi_asset_check

from expirytrack_dagster.assets.contracts import contracts
from expirytrack_dagster.checks.partition_data import load_contracts, partition_scope
from expirytrack_dagster.checks.results import asset_rules, check_result, rule_check_specs
from expirytrack_dagster.quality import PartitionData
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster.storage.database import WRITER_POOL, connect


@multi_asset_check(
    specs=rule_check_specs(contracts.key),
    description="Quality rules on the partition's contract list.",
    pool=WRITER_POOL,  # DuckDB: a read-only connection cannot open while another process writes
)
def contract_quality_checks(
    context: AssetCheckExecutionContext, collection: CollectionSettings
) -> Iterator[AssetCheckResult]:
    """Run the contract rules on the partition's stored contracts (no candles are read)."""
    partition_key = context.partition_key
    with connect(collection.database, read_only=True) as db:
        data = PartitionData(
            scope=partition_scope(db, partition_key, collection),
            contracts=load_contracts(db, partition_key),
        )
    for rule in asset_rules(contracts.key):
        yield check_result(contracts.key, partition_key, rule.run(data))
