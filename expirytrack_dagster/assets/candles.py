"""The candle collection step: the ``candles`` and ``candle_fetch_status`` assets, written together.

``candles`` holds OHLCV + open interest of every contract of the partition; ``candle_fetch_status``
how each (contract, trading day) was answered. One Dagster step (a multi-asset) produces both and
publishes them in one transaction (``storage.io_manager.publish_candles``), so they always
describe the same collection; they are materialised, and selected, together.

Spends the API budget once: days that already landed final (``storage.landing``) are not asked for
again unless ``force_refetch`` is set, so a retry after a crash, or a re-run of a complete
partition, makes no candle requests. Days asked at a request span that is not verified are
``unconfirmed`` and asked again on the next run (see ``collection``).

A fatal error (a dead token, an open circuit, a persistent 429, no Plus plan) stops the partition:
what landed is still published with its status, the days left recorded ``failed`` with the reason,
and the step fails naming the reason and the fix. The partition is not marked materialised.
"""

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import NoReturn

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from expirytrack_dagster.assets.partitioned import expiry_table_spec
from expirytrack_dagster.async_runner import run_async
from expirytrack_dagster.collection import (
    FATAL_ERRORS,
    CollectionReport,
    ContractToFetch,
    collect_candles,
    fetch_status,
)
from expirytrack_dagster.collection.collect import stop_reason
from expirytrack_dagster.explorer.links import partition_links
from expirytrack_dagster.ops.api_usage import (
    candles_fetched_since,
    record_api_usage,
    usage_from_stats,
)
from expirytrack_dagster.ops.prune import apply_retention
from expirytrack_dagster.partitions import parse_partition_key
from expirytrack_dagster.resources import UpstoxApi
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster.storage.database import WRITER_POOL
from expirytrack_dagster.storage.io_manager import (
    CANDLES_TABLE,
    FETCH_STATUS_TABLE,
    PUBLISHED_UNCHANGED,
    StagedCandles,
    publish_candles,
)
from expirytrack_dagster.storage.landing import DAY_STATUSES, FINAL_STATUSES, CandleLanding
from expirytrack_dagster.upstox.client import RequestStats

CANDLES = AssetKey("candles")
CANDLE_FETCH_STATUS = AssetKey("candle_fetch_status")

PROGRESS_PREFIX = "candles: "
"""How the progress lines in the run log start (``expirytrack backfill``/``demo`` show them)."""
PROGRESS_EVERY_S = 30.0
"""At most one progress line per this many seconds (plus one at each tenth of the contracts)."""


class CandlesConfig(Config):
    """Run configuration for ``candles``."""

    force_refetch: bool = False
    """Ask Upstox again for every contract and day, even those already landed final."""


class _ProgressLog:
    """Logs contracts done/total, requests spent and an ETA, at a sane rate."""

    def __init__(self, context: AssetExecutionContext, stats: object) -> None:
        self.context, self.stats = context, stats
        self.started = self.last = time.monotonic()
        self.last_tenth = -1  # the first call (0 done, at the start) always logs

    def __call__(self, done: int, total: int, key: str = "") -> None:
        now = time.monotonic()
        tenth = done * 10 // max(total, 1)
        if done != total and tenth == self.last_tenth and now - self.last < PROGRESS_EVERY_S:
            return
        self.last, self.last_tenth = now, tenth
        elapsed = now - self.started
        eta = f"{elapsed / done * (total - done):.0f} s" if done else "unknown"
        wait = getattr(self.stats, "limiter_wait_s", 0.0)
        self.context.log.info(
            f"{PROGRESS_PREFIX}{done}/{total} contracts, {self.stats.total} requests, "
            f"{wait:.0f} s waited for rate budget, ETA {eta}"
        )


async def _collect(
    upstox: UpstoxApi,
    landing: CandleLanding,
    partition_key: str,
    todo: list[ContractToFetch],
    window: tuple[date, date],
    underlying_key: str,
    force: bool,
    max_in_flight: int,
    context: AssetExecutionContext,
) -> tuple[CollectionReport, dict, tuple[RequestStats, dict]]:
    async with upstox.client() as client:
        progress = _ProgressLog(context, client.stats)
        progress(0, len(todo))
        report = await collect_candles(
            client,
            landing,
            partition_key,
            todo,
            window[0],
            window[1],
            underlying_key=underlying_key,
            force=force,
            max_in_flight=max_in_flight,
            span_cap=upstox.max_span_days,
            progress=progress,
        )
        return report, client.stats.as_metadata(), (client.stats, client.limiter.snapshot())


def contract_days(status: pd.DataFrame) -> dict[str, int]:
    """``contract_days_<status>``: how many (contract, trading day) rows have each status."""
    counts = status["status"].value_counts()
    return {f"contract_days_{name}": int(counts.get(name, 0)) for name in DAY_STATUSES}


@multi_asset(
    name="candles",
    specs=[
        expiry_table_spec(
            CANDLES,
            "Candles of every contract from `lookback_months` before expiry through expiry day; "
            "timestamps are candle starts in IST.",
            deps=["contracts"],
        ),
        expiry_table_spec(
            CANDLE_FETCH_STATUS,
            "How each (contract, trading day) was answered: complete / no_trades (answered at a "
            "verified request span), unconfirmed (at a span not verified yet) or failed (with "
            "the error); the last two are asked again next run. Written with `candles`.",
            deps=["contracts"],
        ),
    ],
    pool=WRITER_POOL,
)
def candles(
    context: AssetExecutionContext,
    config: CandlesConfig,
    upstox: UpstoxApi,
    collection: CollectionSettings,
    contracts: pd.DataFrame,
) -> Iterator[MaterializeResult]:
    """Collect the partition's candles, then publish ``candles`` and ``candle_fetch_status``.

    Both tables are replaced in one transaction (or left alone when the landed data has not
    changed since they were published); a failure before the commit leaves both as they were.
    """
    landing = CandleLanding(collection.landing_dir, collection.interval)
    pruned = landing.pruned_record(context.partition_key)
    if pruned is not None and not config.force_refetch:
        # Verified complete and its landing files pruned (``landing_retention``/``expirytrack
        # prune-landing``): the candles live only in the database, which stays as it is.
        context.log.info(
            f"{context.partition_key}: landing pruned {pruned.pruned_at:%Y-%m-%d %H:%M} UTC after "
            f"verification; its {pruned.candle_rows:,} candles live only in the database: "
            "nothing to collect, nothing written"
        )
        for key in (CANDLES, CANDLE_FETCH_STATUS):
            yield MaterializeResult(
                asset_key=key, metadata={"published": PUBLISHED_UNCHANGED, "landing": "pruned"}
            )
        return
    staged = _collect_partition(context, config, upstox, collection, contracts)
    published = publish_candles(
        collection.database, staged, source=upstox.resolved_source(), skip_unchanged=True
    )
    retention = apply_retention(collection, context.partition_key)
    if retention is not None:
        context.log.info(f"landing_retention: {retention}")
    yield MaterializeResult(
        asset_key=CANDLES,
        metadata={
            **staged.metadata,
            "dagster/row_count": MetadataValue.int(published.rows),
            "dagster/table_name": CANDLES_TABLE,
            "published": published.outcome,
            **({"landing_retention": retention} if retention is not None else {}),
            # Where a trader reads this partition: its pages in the explorer.
            **partition_links(context.partition_key),
        },
    )
    yield MaterializeResult(
        asset_key=CANDLE_FETCH_STATUS,
        metadata={
            "dagster/row_count": MetadataValue.int(len(staged.status)),
            "dagster/table_name": FETCH_STATUS_TABLE,
            **contract_days(staged.status),
            "published": published.outcome,
        },
    )


def _collect_partition(
    context: AssetExecutionContext,
    config: CandlesConfig,
    upstox: UpstoxApi,
    collection: CollectionSettings,
    contracts: pd.DataFrame,
) -> StagedCandles:
    """Collect what the partition still lacks into the landing zone; stage it for publishing."""
    started = time.monotonic()
    partition = parse_partition_key(context.partition_key)
    if contracts.empty:
        raise Failure(
            description=(
                f"no contracts are stored for {context.partition_key}: materialise `expiries` "
                "and `contracts` of this partition first (select all three assets, or run "
                f"`expirytrack backfill {partition.symbol}`). Nothing was written."
            )
        )
    window = (collection.lookback_start(partition.expiry), partition.expiry)
    landing = CandleLanding(collection.landing_dir, collection.interval)
    todo = [
        ContractToFetch(row.expired_instrument_key, row.instrument_type)
        for row in contracts.itertuples()
    ]
    underlying_key = str(contracts["underlying_key"].iloc[0])
    if not underlying_key:
        underlying_key = collection.underlying(partition.symbol).instrument_key
    context.log.info(
        f"{len(todo)} contracts, {collection.interval} candles {window[0]} … {window[1]}, "
        f"from {upstox.describe_source()}"
    )
    run_started = datetime.now(UTC)
    try:
        report, stats, (request_stats, budget) = run_async(
            _collect(
                upstox,
                landing,
                context.partition_key,
                todo,
                window,
                underlying_key,
                config.force_refetch,
                collection.max_in_flight,
                context,
            )
        )
    except FATAL_ERRORS as exc:
        _publish_stopped(context, collection, upstox.resolved_source(), landing, todo, window, exc)
    for event in report.events:
        context.log.warning(event)
    if report.rechecked_contracts:
        context.log.info(
            f"{report.rechecked_contracts} landed contracts had days that were not final "
            f"(failed, unconfirmed, or landed before spans were verified): "
            f"{report.promoted_days} days were confirmed without a request, the rest cost "
            f"{report.window_requests} candle requests"
        )
    if report.duplicates_collapsed:
        context.log.warning(f"{report.duplicates_collapsed} identical duplicate candles collapsed")
    status, files = fetch_status(
        landing,
        context.partition_key,
        [c.expired_instrument_key for c in todo],
        *window,
    )
    usage = usage_from_stats(
        context.run.run_id,
        context.partition_key,
        request_stats,
        candles_fetched=candles_fetched_since(status, run_started),
        data_source=upstox.describe_source(),
        latencies_s=request_stats.latencies_s,
        budget=budget,
    )
    record_api_usage(collection.database, usage)
    days = contract_days(status)
    if unconfirmed := days["contract_days_unconfirmed"]:
        context.log.warning(
            f"{unconfirmed} contract-days were answered at a request span that is "
            "not verified: they are not final and are asked again on the next run"
        )
    metadata = {
        "data_source": upstox.describe_source(),
        # The account of a pool (``upstox.accounts``) whose budget the run spent: a name only.
        **({"upstox_account": upstox.account_name} if upstox.account_name else {}),
        "interval": collection.interval,
        "window": f"{window[0]} … {window[1]}",
        "contracts": len(todo),
        "contracts_fetched": len(report.fetched),
        "contracts_reused": len(report.reused),
        "contracts_failed": len(report.failed),
        **days,
        **report.as_metadata(),
        "api_requests": stats["api_requests"],
        "api_retries": stats["api_retries"],
        "api_429s": stats["api_429s"],
        "limiter_wait_s": stats["limiter_wait_s"],
        "fetch_seconds": round(time.monotonic() - started, 2),
    }
    if report.events:
        metadata["span_log"] = MetadataValue.md("\n".join(f"- {e}" for e in report.events))
    if report.failed:
        worst = sorted(report.failed.items())[:10]
        metadata["failed_contracts"] = MetadataValue.md(
            "| contract | error |\n|---|---|\n"
            + "\n".join(f"| {k} | {e.replace('|', '/')} |" for k, e in worst)
        )
        context.log.warning(f"{len(report.failed)} contracts had failed days; retried next run")
    if collection.compact_landing and status["status"].isin(FINAL_STATUSES).all():
        landing.compact(context.partition_key, [c.expired_instrument_key for c in todo])
        files = [str(path) for path in landing.files(context.partition_key)]
    metadata["landing_files"] = len(set(files))
    return StagedCandles(context.partition_key, tuple(dict.fromkeys(files)), status, metadata)


def _publish_stopped(
    context: AssetExecutionContext,
    collection: CollectionSettings,
    source: str,
    landing: CandleLanding,
    todo: list[ContractToFetch],
    window: tuple[date, date],
    exc: Exception,
) -> NoReturn:
    """Publish what landed and the status of every day (the rest ``failed`` with the reason), then
    fail the step with the reason and the fix."""
    status, files = fetch_status(
        landing, context.partition_key, [c.expired_instrument_key for c in todo], *window
    )
    staged = StagedCandles(context.partition_key, tuple(files), status)
    rows = publish_candles(collection.database, staged, source=source).rows
    failed = int((status["status"] == "failed").sum())
    raise Failure(
        description=(
            f"{context.partition_key}: {stop_reason(exc)}. Published what landed before the stop: "
            f"{rows:,} candles, and candle_fetch_status for {len(status):,} contract-days, "
            f"{failed:,} of them failed (the days the stop left carry this reason); the next "
            "run asks only for the days that are not final."
        ),
        metadata={
            "candles_published": rows,
            "contract_days_failed": failed,
            "stopped_by": type(exc).__name__,
        },
    ) from exc
