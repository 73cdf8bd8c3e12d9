"""``rule_checks``: one multi-asset check running every registered rule of an asset on a partition."""

import time
from collections.abc import Callable, Iterator, Sequence

import duckdb
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetKey,
    multi_asset_check,
)

from expirytrack_dagster.checks.results import asset_rules, check_result, rule_check_specs
from expirytrack_dagster.quality import PartitionData
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster.storage.database import WRITER_POOL, connect

Loader = Callable[[duckdb.DuckDBPyConnection, str, CollectionSettings], PartitionData]
"""Reads what the asset's rules need for one partition from the open (read-only) database."""


def rule_checks(
    name: str,
    asset: AssetKey,
    description: str,
    load: Loader,
    reads: Sequence[AssetKey] = (),
) -> AssetChecksDefinition:
    """A check per registered rule of ``asset`` (see ``quality.registry``), run together.

    The partition is loaded once with ``load``; each rule reports its own verdict in the UI.
    ``reads``: other assets ``load`` reads, shown as the checks' upstream in the lineage.
    """

    @multi_asset_check(
        name=name,
        specs=rule_check_specs(asset, reads),
        description=description,
        pool=WRITER_POOL,  # DuckDB: a read-only connection cannot open while another process writes
    )
    def checks(
        context: AssetCheckExecutionContext, collection: CollectionSettings
    ) -> Iterator[AssetCheckResult]:
        partition_key = context.partition_key
        started = time.monotonic()
        with connect(collection.database, read_only=True) as db:
            data = load(db, partition_key, collection)
        loaded = time.monotonic()
        results = [rule.run(data) for rule in asset_rules(asset)]
        rows = f"{len(data.candles):,} candles" if data.candles is not None else "contracts"
        context.log.info(
            f"{partition_key}: {rows} loaded in {loaded - started:.1f}s, "
            f"{len(results)} rules ran in {time.monotonic() - loaded:.1f}s"
        )
        for result in results:
            yield check_result(asset, partition_key, result)

    return checks
