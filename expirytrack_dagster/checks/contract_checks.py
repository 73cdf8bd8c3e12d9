"""Checks on the ``contracts`` asset: every registered contract rule, one partition at a time.

Separate from the candle checks because they must run between ``contracts`` and ``candles``: a
blocking failure here stops ``candles`` before it spends the API budget on a broken contract
list. (One multi-check over both assets could not do that: it would need the candles first.)
"""

import duckdb

from expirytrack_dagster.assets.contracts import contracts
from expirytrack_dagster.checks.partition_data import load_contracts, partition_scope
from expirytrack_dagster.checks.rule_checks import rule_checks
from expirytrack_dagster.quality import PartitionData
from expirytrack_dagster.settings import CollectionSettings


def load_contract_rule_data(
    db: duckdb.DuckDBPyConnection, partition_key: str, collection: CollectionSettings
) -> PartitionData:
    """The partition's scope and contract list (no candles are read)."""
    return PartitionData(
        scope=partition_scope(db, partition_key, collection),
        contracts=load_contracts(db, partition_key),
    )


contract_quality_checks = rule_checks(
    "contract_quality_checks",
    contracts.key,
    "Quality rules on the partition's contract list.",
    load_contract_rule_data,
)
