"""The project's sensors: new final expiries become partitions and runs; killed runs are failed.

The new-expiry sensor adds a partition for every expiry that has become final, and runs it.

Each tick asks Upstox for the expiry list of every watched underlying (one request each, through
the shared rate limiter). An expiry is final once its session has closed plus a settling delay
(``final_after_close_minutes``). The first time the sensor sees an underlying, the expiries it
already lists are history: they become partitions (so the UI shows them as missing, ready to
backfill) but no runs are launched, so turning the sensor on never floods the API budget. After
that, every newly final expiry becomes a partition and a run.

Runs carry ``run_key=partition_key``: Dagster never launches the same key twice for this sensor,
so a repeated tick cannot duplicate a run. The cursor records, per underlying, the latest expiry
handled; it only moves forward, and only past expiries that were actually handled.

A tick whose token is missing, dead or about to die skips with the reason before any request:
runs launched with it would fail half-way. A tick never waits longer than Dagster allows a sensor
(60 s): when a backfill has taken the rate budget it skips, saying which window is full and when
it frees up, and the next tick tries again; the API work itself is cut off after
``SENSOR_API_DEADLINE_S``.

The orphaned-run sensor marks a run failed once no process of it exists (``kill -9``) and frees
the pool slots it held, so the next run does not wait forever for the ``duckdb_writer`` slot.
"""

import asyncio
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

# Private path, public class: the run storage tells whether every run executes on this machine.
from dagster._core.storage.runs import SqliteRunStorage

from expirytrack_dagster.async_runner import run_async
from expirytrack_dagster.calendar import IST
from expirytrack_dagster.expiry_listing import BudgetTaken, is_final, list_expiries
from expirytrack_dagster.instruments import Underlying
from expirytrack_dagster.partitions import build_partition_key, expiry_partitions
from expirytrack_dagster.resources import UpstoxApi
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster.upstox.errors import TokenExpired
from expirytrack_dagster.upstox.limiter import format_duration

logger = logging.getLogger(__name__)

SENSOR_INTERVAL_SECONDS = 3600
"""Hourly: expiries happen at most a few times a week, and a tick costs one request per underlying."""

SENSOR_API_DEADLINE_S = 40.0
"""A tick's requests give up after this long; Dagster stops a sensor evaluation at 60 s."""
BUDGET_WAIT_ALLOWANCE_S = 10.0
"""A tick goes ahead when the rate budget has room within this long, and skips otherwise."""


@dataclass
class ExpiryPlan:
    """What one tick decided: partitions to add, partitions to run, and the next cursor."""

    add: list[str] = field(default_factory=list)
    run: list[str] = field(default_factory=list)
    cursor: dict[str, str] = field(default_factory=dict)


def plan_new_expiries(
    listed: Mapping[str, Iterable[date]],
    cursor: Mapping[str, str],
    existing: set[str],
    now: datetime,
    delay: timedelta,
) -> ExpiryPlan:
    """Decide a tick from the listed expiries per symbol, the cursor and the existing partitions."""
    plan = ExpiryPlan(cursor=dict(cursor))
    for symbol, expiries in listed.items():
        final = sorted(d for d in expiries if is_final(d, now, delay))
        if not final:
            continue
        seen = cursor.get(symbol)
        for expiry in final:
            key = build_partition_key(symbol, expiry)
            if key not in existing:
                plan.add.append(key)
            if seen is not None and expiry > date.fromisoformat(seen):
                plan.run.append(key)
        plan.cursor[symbol] = max(
            final[-1], date.fromisoformat(seen) if seen else final[-1]
        ).isoformat()
    return plan


async def _poll_within_tick(
    upstox: UpstoxApi, underlyings: Iterable[Underlying]
) -> dict[str, list[date]]:
    async with asyncio.timeout(SENSOR_API_DEADLINE_S):
        return await list_expiries(upstox, underlyings, max_budget_wait_s=BUDGET_WAIT_ALLOWANCE_S)


@sensor(
    name="new_expiry_sensor",
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    asset_selection=["expiries", "contracts", "index_candles", "candles", "candle_fetch_status"],
    description=__doc__.split("\n\n")[0],
)
def new_expiry_sensor(
    context: SensorEvaluationContext, upstox: UpstoxApi, collection: CollectionSettings
) -> SensorResult | SkipReason:
    try:
        upstox.check_token_deadline()
    except TokenExpired as exc:
        return SkipReason(f"not polling Upstox and launching no runs: {exc.message}")
    underlyings = collection.watched()
    try:
        listed = run_async(_poll_within_tick(upstox, underlyings))
    except BudgetTaken as exc:
        reason = (
            f"Upstox rate budget taken ({exc.budget.describe()}); this tick needs "
            f"{len(underlyings)} requests, so it skips and the next tick tries again"
        )
        context.log.info(reason)
        return SkipReason(reason)
    except TimeoutError:
        reason = (
            f"Upstox expiry lists did not arrive within {format_duration(SENSOR_API_DEADLINE_S)} "
            "(rate budget or a slow API); the next tick tries again"
        )
        context.log.info(reason)
        return SkipReason(reason)
    existing = set(context.instance.get_dynamic_partitions(expiry_partitions.name))
    cursor = json.loads(context.cursor) if context.cursor else {}
    plan = plan_new_expiries(
        listed,
        cursor,
        existing,
        datetime.now(IST),
        timedelta(minutes=collection.final_after_close_minutes),
    )
    if not plan.add and not plan.run and plan.cursor == cursor:
        return SkipReason(f"no new final expiries among {', '.join(listed)}")
    context.log.info(f"adding {len(plan.add)} partitions, requesting {len(plan.run)} runs")
    return SensorResult(
        run_requests=[RunRequest(partition_key=key, run_key=key) for key in plan.run],
        dynamic_partitions_requests=[expiry_partitions.build_add_request(plan.add)]
        if plan.add
        else [],
        cursor=json.dumps(plan.cursor, sort_keys=True),
    )


# -- Runs whose process is gone --------------------------------------------------------------

ORPHAN_CHECK_SECONDS = 60
"""How often the orphaned-run sensor looks for STARTED runs whose processes are all gone."""


def process_alive(pid: int) -> bool:
    """True when a process with this id exists on this machine (a reused id counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_process_ids(instance: DagsterInstance, run_id: str) -> set[int]:
    """Every process Dagster recorded as working on the run: the run's own and its steps'."""
    entries = instance.all_logs(
        run_id, of_type={DagsterEventType.ENGINE_EVENT, DagsterEventType.STEP_WORKER_STARTED}
    )
    pids = set()
    for entry in entries:
        data = entry.dagster_event.engine_event_data if entry.dagster_event else None
        pid = (data.metadata or {}).get("pid") if data is not None else None
        if pid is not None and str(pid.value).isdigit():
            pids.add(int(pid.value))
    return pids


def find_orphaned_runs(instance: DagsterInstance) -> list[tuple[DagsterRun, set[int]]]:
    """STARTED runs none of whose recorded processes exists any more (killed with ``kill -9``,
    an out-of-memory kill, a closed terminal), with those process ids.

    Only for an instance whose runs all execute on this machine (SQLite storage): a process id
    means nothing on another host. A run that has not yet recorded a process is left alone.
    """
    if not isinstance(instance.run_storage, SqliteRunStorage):
        return []
    orphans = []
    for run in instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED])):
        pids = run_process_ids(instance, run.run_id)
        if pids and not any(process_alive(pid) for pid in pids):
            orphans.append((run, pids))
    return orphans


def fail_orphaned_runs(instance: DagsterInstance) -> list[str]:
    """Mark every orphaned run failed and free the pool slots it held; return the run ids.

    The next run waiting for the ``duckdb_writer`` slot then starts at once. Safe to call from
    any process (the new-expiry daemon's sensor, the CLI at start-up).
    """
    failed = []
    for run, pids in find_orphaned_runs(instance):
        ids = ", ".join(str(pid) for pid in sorted(pids))
        instance.report_run_failed(
            run,
            f"Marked failed: no process of this run exists any more (pid {ids}; killed?). "
            "Data written before the kill is kept; run the partition again to finish it.",
        )
        freed = instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        logger.info(
            f"Run {run.run_id} ({run.job_name}) had no live process (pid {ids}): marked failed, "
            f"{freed} pool slot(s) freed."
        )
        failed.append(run.run_id)
    return failed


@sensor(
    name="orphaned_run_sensor",
    minimum_interval_seconds=ORPHAN_CHECK_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Marks runs whose process was killed as failed and frees their pool slots.",
)
def orphaned_run_sensor(context: SensorEvaluationContext) -> SkipReason:
    """Dagster's run monitoring cannot ask the local run launcher whether a run's process is
    alive, so a killed run would stay STARTED (holding the only ``duckdb_writer`` slot) until
    ``max_runtime_seconds``. This sensor checks the recorded process ids every minute."""
    failed = fail_orphaned_runs(context.instance)
    if failed:
        return SkipReason(f"marked {len(failed)} orphaned run(s) failed: {', '.join(failed)}")
    return SkipReason("no orphaned runs")
