"""Checks on the ``contracts`` asset: one listing per contract, and a chain that hangs together.

Separate from the candle checks because they must run between ``contracts`` and ``candles``: a
blocking failure here stops ``candles`` before it spends the API budget on a broken contract
list. (One multi-check over both assets could not do that: it would need the candles first.)
"""

from collections.abc import Iterator

from dagster import AssetCheckExecutionContext, AssetCheckResult, multi_asset_check

from expirytrack_dagster.assets.contracts import contracts
from expirytrack_dagster.assets.expiries import WRITER_POOL
from expirytrack_dagster.checks.partition_data import load_contracts, partition_scope
from expirytrack_dagster.checks.results import check_result, rule_check_specs
from expirytrack_dagster.quality import (
    QualitySettings,
    check_contract_consistency,
    check_contract_uniqueness,
)
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster.storage.database import connect

CONTRACT_RULES: tuple[str, ...] = ("contract_uniqueness", "contract_consistency")
"""Rules on the contract list; contract_uniqueness (ERROR) blocks ``candles``."""


@multi_asset_check(
    specs=rule_check_specs(contracts.key, CONTRACT_RULES),
    description="Quality rules on the partition's contract list.",
    pool=WRITER_POOL,  # DuckDB: a read-only connection cannot open while another process writes
)
def contract_quality_checks(
    context: AssetCheckExecutionContext, collection: CollectionSettings
) -> Iterator[AssetCheckResult]:
    """Run the contract rules on the partition's stored contracts."""
    partition_key = context.partition_key
    settings = QualitySettings()
    with connect(collection.database, read_only=True) as db:
        scope = partition_scope(db, partition_key, collection)
        listed = load_contracts(db, partition_key)
    for result in (
        check_contract_uniqueness(listed, settings),
        check_contract_consistency(listed, scope, settings),
    ):
        yield check_result(contracts.key, partition_key, result)
