"""The research assets: option_greeks, option_chain_daily, chain_metrics and continuous_futures.

**Partitioned like candles** (one step, ``chain_research``, writes the three chain tables of a
partition in one DuckDB transaction, because they share one as-of grid of the partition; the
definitions are in ``research.chain_tables``):

- ``option_greeks``: per option per traded minute, the forward used, IV, delta, gamma, theta, vega;
- ``option_chain_daily``: per contract per session, OHLC, volume, OI at close, OI change vs the
  contract's previous traded session, build-up class, IV and delta at close;
- ``chain_metrics``: per session and ``research.bucket_minutes`` bucket, the chain as of the
  bucket's last minute: forward, ATM strike, PCR (OI, volume), max pain, CE/PE OI, ATM legs and
  straddle, ATM IV and the 25-delta skew.

**continuous_futures** is per underlying, not per expiry: the front-month future stitched across
every collected monthly partition (``research.continuous``). It is one unpartitioned table with an
``underlying_symbol`` column, recomputed whole on each update, because each underlying's series
depends on *all* its monthly partitions (a roll joins two of them) and Dagster has no mapping
from the dynamic expiry partitions to a per-underlying partition set; a full rebuild reads only
the futures' candles (about 23 000 per three-month window), a few seconds for dozens of expiries.

**When they run.** Automatically, by declarative automation (the ``research_automation`` sensor,
on from the start): the chain tables of a partition after its ``candles`` (and ``contracts``)
update *and* every blocking check on them passed in their latest evaluation
(``AutomationCondition.all_deps_blocking_checks_passed``), so a partition whose blocking checks
failed is never turned into research tables; ``continuous_futures`` after any ``candles``
partition updates, reading only the partitions whose latest checks have no failed blocking rule.
"""

import time
from collections.abc import Iterator

import duckdb
import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from expirytrack_dagster.assets.candles import CANDLES
from expirytrack_dagster.assets.partitioned import expiry_table_spec
from expirytrack_dagster.coverage_report.check_status import (
    latest_check_statuses,
    partition_check_status,
)
from expirytrack_dagster.research.chain_tables import build_chain_tables
from expirytrack_dagster.research.continuous import FUTURE_COLUMNS, stitch
from expirytrack_dagster.research.partition_grid import load_partition
from expirytrack_dagster.research.settings import ResearchSettings
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster.storage.database import WRITER_POOL, connect
from expirytrack_dagster.storage.io_manager import insert_frame, transaction

RESEARCH_GROUP = "research"
OPTION_GREEKS = AssetKey("option_greeks")
OPTION_CHAIN_DAILY = AssetKey("option_chain_daily")
CHAIN_METRICS = AssetKey("chain_metrics")
CONTINUOUS_FUTURES = AssetKey("continuous_futures")
CHAIN_TABLES = (OPTION_GREEKS, OPTION_CHAIN_DAILY, CHAIN_METRICS)

AFTER_BLOCKING_CHECKS = (
    AutomationCondition.eager() & AutomationCondition.all_deps_blocking_checks_passed()
)
"""A partition is (re)built when its candles or contracts update, nothing upstream is missing or in
progress, and every blocking check on them passed (or is requested in the same tick: a run that
then fails a blocking check does not materialise the research tables)."""

AFTER_ANY_CANDLES = AutomationCondition.eager().without(~AutomationCondition.any_deps_missing())
"""``continuous_futures``: after any candles partition updates. Eager minus "no dependency
missing": some registered partition is usually not collected (yet), which must not stop it."""

USABLE_CHECK_STATUSES = ("passed", "warn")
"""A partition feeds continuous_futures only when its latest checks are these (no blocking
failure, none running or unrun)."""

_DESCRIPTIONS = {
    OPTION_GREEKS: "Per option per traded minute: the synthetic forward used, Black-76 IV "
    "(solved), delta, gamma, theta (per day), vega (per vol point). No forward, no IV.",
    OPTION_CHAIN_DAILY: "Per contract per session: OHLC, volume, OI at close, OI change vs the "
    "previous traded session, build-up class, IV and delta at close (vs the forward then).",
    CHAIN_METRICS: "Per session and bucket (research.bucket_minutes): forward, ATM strike, PCR "
    "by OI and volume, max pain, CE/PE OI, ATM legs and straddle, ATM IV, 25-delta skew.",
}


def _chain_spec(key: AssetKey) -> object:
    spec = expiry_table_spec(key, _DESCRIPTIONS[key], deps=["contracts", CANDLES.to_user_string()])
    return spec.replace_attributes(
        group_name=RESEARCH_GROUP, automation_condition=AFTER_BLOCKING_CHECKS
    )


@multi_asset(
    name="chain_research",
    specs=[_chain_spec(key) for key in CHAIN_TABLES],
    pool=WRITER_POOL,
)
def chain_research(
    context: AssetExecutionContext, collection: CollectionSettings, research: ResearchSettings
) -> Iterator[MaterializeResult]:
    """Build the partition's option_greeks, option_chain_daily and chain_metrics; replace their
    rows of the partition in one transaction (all three or none)."""
    key = context.partition_key
    started = time.monotonic()
    with connect(collection.database, read_only=True) as db:
        candles = load_partition(db, key)
    if candles.contracts.empty:
        raise Failure(
            description=f"no contracts are stored for {key}: collect the partition first "
            f"(expiries, contracts, candles). Nothing was written."
        )
    loaded, count = time.monotonic(), len(candles)
    tables = build_chain_tables(
        candles,
        rate=research.rate,
        bucket_minutes=research.bucket_minutes,
        max_age_minutes=research.max_age_minutes,
    )
    del candles  # freed before the write, which holds the new rows in memory until COMMIT
    computed = time.monotonic()
    frames = {
        OPTION_GREEKS: tables.option_greeks,
        OPTION_CHAIN_DAILY: tables.option_chain_daily,
        CHAIN_METRICS: tables.chain_metrics,
    }
    with transaction(collection.database) as db:
        for asset_key, frame in frames.items():
            table = f"main.{asset_key.path[-1]}"
            db.execute(f"DELETE FROM {table} WHERE partition_key = ?", [key])
            insert_frame(db, table, frame)
    context.log.info(
        f"{key}: {count:,} candles loaded in {loaded - started:.1f}s, tables computed in "
        f"{computed - loaded:.1f}s, written in {time.monotonic() - computed:.1f}s"
    )
    settings = (
        f"rate={research.rate}, bucket_minutes={research.bucket_minutes}, "
        f"max_age_minutes={research.max_age_minutes}"
    )
    for asset_key, frame in frames.items():
        metadata = {
            "dagster/row_count": MetadataValue.int(len(frame)),
            "dagster/table_name": f"main.{asset_key.path[-1]}",
            "settings": settings,
        }
        if "iv" in frame.columns:
            metadata["rows_with_iv"] = MetadataValue.int(int(frame["iv"].notna().sum()))
        yield MaterializeResult(asset_key=asset_key, metadata=metadata)


def load_futures(db: duckdb.DuckDBPyConnection, partition_keys: list[str]) -> pd.DataFrame:
    """Every candle of the futures of ``partition_keys``, in ``research.continuous``'s columns.

    The futures' keys are looked up first and the candles then asked for by key as a constant
    list: DuckDB skips the row groups that cannot hold them (candles are stored by partition and
    contract), instead of joining every candle of the database.
    """
    futures = db.execute(
        "SELECT partition_key, expired_instrument_key, underlying_symbol, expiry "
        "FROM main.contracts WHERE instrument_type = 'FUT' AND partition_key IN "
        "(SELECT unnest(?))",
        [partition_keys],
    ).df()
    if futures.empty:
        return pd.DataFrame(columns=list(FUTURE_COLUMNS))
    keys = futures["expired_instrument_key"].unique().tolist()
    candles = db.execute(
        'SELECT partition_key, expired_instrument_key, "timestamp", open, high, low, close, '
        "volume, open_interest FROM main.candles WHERE expired_instrument_key IN "
        f"({', '.join('?' * len(keys))})",
        keys,
    ).df()
    return candles.merge(futures, on=["partition_key", "expired_instrument_key"])[
        list(FUTURE_COLUMNS)
    ]


def usable_partitions(statuses: dict[str, dict[str, str]]) -> list[str]:
    """Partition keys whose latest checks are :data:`USABLE_CHECK_STATUSES`, sorted."""
    return sorted(
        key
        for key, rules in statuses.items()
        if partition_check_status(rules)[0] in USABLE_CHECK_STATUSES
    )


@asset(
    deps=["contracts", CANDLES.to_user_string()],
    pool=WRITER_POOL,
    group_name=RESEARCH_GROUP,
    kinds={"duckdb"},
    automation_condition=AFTER_ANY_CANDLES,
    description="Per underlying, the front-month future stitched across every collected monthly "
    "partition under the roll rule (research.roll): unadjusted and difference back-adjusted "
    "prices, with the contract each minute came from.",
)
def continuous_futures(
    context: AssetExecutionContext, collection: CollectionSettings, research: ResearchSettings
) -> MaterializeResult:
    """Rebuild the whole table from the futures of every partition whose checks passed."""
    statuses = latest_check_statuses(context.instance)
    usable = usable_partitions(statuses)
    left_out = sorted(set(statuses) - set(usable))
    if left_out:
        context.log.warning(
            f"{len(left_out)} partition(s) left out (a blocking check failed, or checks are "
            f"running or did not run): {', '.join(left_out[:20])}"
        )
    with connect(collection.database, read_only=True) as db:
        futures = load_futures(db, usable)
    series = stitch(futures, research.roll)
    with transaction(collection.database) as db:
        db.execute("DELETE FROM main.continuous_futures")
        insert_frame(db, "main.continuous_futures", series)
    per_underlying = series.groupby("underlying_symbol")["expired_instrument_key"].nunique()
    return MaterializeResult(
        metadata={
            "dagster/row_count": MetadataValue.int(len(series)),
            "dagster/table_name": "main.continuous_futures",
            "roll": research.roll.describe(),
            "partitions_used": MetadataValue.int(len(usable)),
            "partitions_left_out": MetadataValue.int(len(left_out)),
            "contracts_per_underlying": MetadataValue.json(
                {str(k): int(v) for k, v in per_underlying.items()}
            ),
        }
    )


RESEARCH_ASSETS = [chain_research, continuous_futures]
"""Every research asset definition, for ``Definitions(assets=...)``."""

research_sensor = AutomationConditionSensorDefinition(
    "research_automation",
    target=AssetSelection.assets(*CHAIN_TABLES, CONTINUOUS_FUTURES),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Builds the research tables after candles pass their blocking checks.",
)
"""Evaluates the research assets' automation conditions; on from the start (the default
automation sensor is off until switched on in the UI)."""
