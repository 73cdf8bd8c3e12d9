"""The ``coverage_report`` asset and the sensor that refreshes it.

Unpartitioned and below ``candles`` by a plain dependency: it aggregates in DuckDB instead of
loading partitions through the IO manager, and reads the latest check result per partition from
the Dagster instance (the parts are in ``expirytrack_dagster.coverage_report``). Its page in the
UI shows an expiry × underlying grid, newest expiry first, and a sortable table of every
partition. A partition key that is not ``SYMBOL_YYYY-MM-DD`` (say ``nifty-test`` added by hand
in the UI) is reported once in the run log and the metadata, and left out.
"""

from datetime import UTC, datetime

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    asset,
)

from expirytrack_dagster.assets.candles import candles
from expirytrack_dagster.assets.partitioned import GROUP
from expirytrack_dagster.coverage_report import (
    build_report,
    coverage_metadata,
    latest_check_statuses,
    stored_partitions,
)
from expirytrack_dagster.partitions import expiry_partitions, split_partition_keys
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster.storage.database import WRITER_POOL

COVERAGE_REFRESH = AutomationCondition.eager().without(~AutomationCondition.any_deps_missing())
"""Refresh after any ``candles`` partition updates, once no partition is being collected.

Eager, minus its "no dependency missing" clause: with dynamic partitions some partition is
often registered but not (yet, or ever) collected, and the report exists to show exactly that.
Like every condition, it starts quietly: the first report follows the first ``candles`` update
after deployment (or a click on Materialize).
"""


@asset(
    deps=[candles],
    pool=WRITER_POOL,  # reads DuckDB, and its output is written there
    group_name=GROUP,
    kinds={"duckdb"},
    automation_condition=COVERAGE_REFRESH,
)
def coverage_report(context: AssetExecutionContext, collection: CollectionSettings) -> pd.DataFrame:
    """Every partition: contracts, candles, contract-days answered, failed contracts, checks.

    A partition is complete when at least 99 % of its (contract, trading day) requests were
    answered (with candles or "no trades") and no blocking check failed, partial from 90 %, low
    below that, failed when a blocking check failed, not collected when registered only.
    Partition keys that are not ``SYMBOL_YYYY-MM-DD`` are named once in the log and skipped.
    """
    reported_at = datetime.now(UTC)
    registered = context.instance.get_dynamic_partitions(expiry_partitions.name)
    stored = stored_partitions(collection.database)
    _, foreign = split_partition_keys(
        sorted(set(registered).union(*(frame["partition_key"] for frame in stored)))
    )
    if foreign:
        context.log.warning(
            f"Skipping {len(foreign)} partition key(s) not of the form SYMBOL_YYYY-MM-DD "
            f"(added by hand?): {', '.join(foreign)}; `expirytrack partitions --remove-foreign` "
            "removes them."
        )
    report = build_report(registered, stored, latest_check_statuses(context.instance), reported_at)
    context.add_output_metadata(coverage_metadata(report, foreign))
    return report


coverage_report_sensor = AutomationConditionSensorDefinition(
    "coverage_report_automation",
    target=AssetSelection.assets(coverage_report),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Refreshes coverage_report when candles change (see COVERAGE_REFRESH).",
)
"""Evaluates ``coverage_report``'s automation condition; on from the start, unlike the default
automation sensor, so the report keeps up without a click in the UI."""
