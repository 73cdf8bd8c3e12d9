"""The ``candles`` asset: OHLCV + open interest of every contract of the partition.

Spends the API budget once: contracts that already landed (``storage.landing``) are not asked for
again unless ``force_refetch`` is set, so a retry after a crash, or a re-run of a complete
partition, makes no candle requests for them. The partition is then published to DuckDB in one
transaction together with its per-(contract, day) fetch status.
"""

import asyncio
import time
from datetime import date

import pandas as pd
from dagster import AssetExecutionContext, Config, MetadataValue, asset

from expirytrack_dagster.assets.expiries import WRITER_POOL
from expirytrack_dagster.candle_collection import (
    CollectionReport,
    ContractToFetch,
    collect_candles,
    fetch_status,
)
from expirytrack_dagster.partitions import expiry_partitions, parse_partition_key
from expirytrack_dagster.resources import UpstoxResource
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster.storage.io_manager import StagedCandles
from expirytrack_dagster.storage.landing import CandleLanding


class CandlesConfig(Config):
    """Run configuration for ``candles``."""

    force_refetch: bool = False
    """Ask Upstox again for every contract, even those already landed."""


async def _collect(
    upstox: UpstoxResource,
    landing: CandleLanding,
    partition_key: str,
    todo: list[ContractToFetch],
    window: tuple[date, date],
    force: bool,
    max_in_flight: int,
) -> tuple[CollectionReport, dict]:
    async with upstox.client() as client:
        report = await collect_candles(
            client,
            landing,
            partition_key,
            todo,
            window[0],
            window[1],
            force=force,
            max_in_flight=max_in_flight,
        )
        return report, client.stats.as_metadata()


@asset(
    partitions_def=expiry_partitions,
    metadata={"partition_expr": "partition_key"},
    pool=WRITER_POOL,
    group_name="expired_fno",
    kinds={"duckdb"},
)
def candles(
    context: AssetExecutionContext,
    config: CandlesConfig,
    upstox: UpstoxResource,
    collection: CollectionSettings,
    contracts: pd.DataFrame,
) -> StagedCandles:
    """Candles of every contract from ``lookback_months`` before expiry through expiry day.

    Timestamps are candle starts in IST; an untraded contract or day simply has no rows and is
    recorded as ``no_trades`` in ``candle_fetch_status``; a contract whose download failed is
    recorded as ``failed`` with the error, and is fetched again on the next run.
    """
    started = time.monotonic()
    partition = parse_partition_key(context.partition_key)
    window = (collection.lookback_start(partition.expiry), partition.expiry)
    landing = CandleLanding(collection.landing_dir, collection.interval)
    todo = [
        ContractToFetch(row.expired_instrument_key, row.instrument_type)
        for row in contracts.itertuples()
    ]
    context.log.info(
        f"{len(todo)} contracts, {collection.interval} candles {window[0]} … {window[1]}, "
        f"from {upstox.describe_source()}"
    )
    report, stats = asyncio.run(
        _collect(
            upstox,
            landing,
            context.partition_key,
            todo,
            window,
            config.force_refetch,
            collection.max_in_flight,
        )
    )
    status, files = fetch_status(
        landing,
        context.partition_key,
        [c.expired_instrument_key for c in todo],
        *window,
    )
    by_status = status["status"].value_counts().to_dict()
    metadata = {
        "data_source": upstox.describe_source(),
        "interval": collection.interval,
        "window": f"{window[0]} … {window[1]}",
        "contracts": len(todo),
        "contracts_fetched": len(report.fetched),
        "contracts_reused": len(report.reused),
        "contracts_failed": len(report.failed),
        "contract_days_complete": int(by_status.get("complete", 0)),
        "contract_days_no_trades": int(by_status.get("no_trades", 0)),
        "contract_days_failed": int(by_status.get("failed", 0)),
        "api_requests": stats["api_requests"],
        "api_retries": stats["api_retries"],
        "api_429s": stats["api_429s"],
        "fetch_seconds": round(time.monotonic() - started, 2),
    }
    if report.failed:
        worst = sorted(report.failed.items())[:10]
        metadata["failed_contracts"] = MetadataValue.md(
            "| contract | error |\n|---|---|\n"
            + "\n".join(f"| {k} | {e.replace('|', '/')} |" for k, e in worst)
        )
        context.log.warning(f"{len(report.failed)} contracts failed; they are retried next run")
    return StagedCandles(context.partition_key, tuple(files), status, metadata)
