"""The notification sensors: Dagster watches runs, check results, the token and new partitions.

- ``notify_run_failure`` (a run-failure sensor): any run of this project failed.
- ``notify_partition_collected`` (a run-status sensor on success): a run that materialised a
  partition's ``candles`` finished; the message carries its checks' verdict.
- ``notify_blocking_check_failed``: a blocking asset check failed (in a run or when checks were
  executed on their own); one message per run and partition.
- ``notify_token_deadline``: the Upstox token dies within ``token_warning_hours`` (once per
  token), or is already dead or absent (once per IST day, at the first tick of the day).
- ``notify_new_partition``: expiries became partitions (the new-expiry sensor adds them).

Each sensor remembers what it reported in its cursor, so nothing is sent twice. On its first tick
a sensor starts from "now": history (past runs, existing partitions) is not news. A channel that
fails is logged as a warning on the tick and not retried.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetKey,
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    EnvVar,
    RunFailureSensorContext,
    RunsFilter,
    RunStatusSensorContext,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    run_status_sensor,
    sensor,
)

# Private path, public classes: a check execution and its status (planned, succeeded, failed).
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecord,
    AssetCheckExecutionRecordStatus,
)

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.credentials.guard import ActiveToken, active_token
from expirytrack_dagster.credentials.store import CredentialStore, CredentialStoreError
from expirytrack_dagster.notifications import messages
from expirytrack_dagster.notifications.channels import deliver
from expirytrack_dagster.notifications.messages import CheckVerdict, Notification
from expirytrack_dagster.notifications.settings import NotificationSettings
from expirytrack_dagster.partitions import expiry_partitions, split_partition_keys
from expirytrack_dagster.resources import UpstoxApi

PARTITION_TAG = "dagster/partition"
CANDLES = AssetKey("candles")
COLLECTED_FIGURES = (
    "contracts",
    "contract_days_complete",
    "contract_days_no_trades",
    "contract_days_failed",
    "api_requests",
)
"""Numbers from the candles materialisation quoted in a 'partition collected' message."""

RUN_SENSOR_INTERVAL_S = 30
CHECK_SENSOR_INTERVAL_S = 60
TOKEN_SENSOR_INTERVAL_S = 600
PARTITION_SENSOR_INTERVAL_S = 60
CHECK_HISTORY_PAGE = 200


def _send(
    settings: NotificationSettings, notification: Notification, log: logging.Logger
) -> list[str]:
    failures = deliver(settings, notification)
    for failure in failures:
        log.warning(f"notification not delivered: {failure}")
    return failures


def _outcome(notifications: Sequence[Notification], failures: Sequence[str]) -> SkipReason:
    sent = ", ".join(n.title for n in notifications)
    lost = f"; {len(failures)} delivery failure(s): {' | '.join(failures)}" if failures else ""
    return SkipReason(f"notified: {sent}{lost}" if notifications else "nothing to notify")


# -- What a run did ---------------------------------------------------------------------------


def run_check_verdicts(instance: DagsterInstance, run_id: str) -> list[CheckVerdict]:
    """Every asset check result recorded in the run, in the order they were reported."""
    verdicts = []
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data if entry.dagster_event else None
        if evaluation is not None:
            verdicts.append(check_verdict(evaluation))
    return verdicts


def check_verdict(evaluation: AssetCheckEvaluation) -> CheckVerdict:
    """A check evaluation as the plain verdict the messages use (its ``summary`` line, if any)."""
    summary = evaluation.metadata.get("summary")
    return CheckVerdict(
        check_name=evaluation.check_name,
        passed=evaluation.passed,
        severity=evaluation.severity.value,
        blocking=bool(evaluation.blocking),
        summary=str(summary.value) if summary is not None else evaluation.description,
    )


def candles_figures(instance: DagsterInstance, run_id: str) -> dict[str, int | float] | None:
    """The quoted figures of the run's ``candles`` materialisation; None when it made none."""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.asset_materialization
        if materialization is not None and materialization.asset_key == CANDLES:
            metadata = materialization.metadata
            return {
                name: metadata[name].value
                for name in COLLECTED_FIGURES
                if name in metadata and isinstance(metadata[name].value, int | float)
            }
    return None


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def step_error(event: DagsterEvent) -> str:
    """A failed step's reason in one line: a ``Failure``'s description, else the user's error
    (``Exception: boom``) rather than Dagster's wrapper around it."""
    data = event.step_failure_data
    if data.user_failure_data is not None and data.user_failure_data.description:
        return _first_line(data.user_failure_data.description)
    error = data.error
    while (
        error is not None and error.cls_name == "DagsterExecutionStepExecutionError" and error.cause
    ):
        error = error.cause
    line = _first_line(error.message if error else None)
    head, colon, rest = line.partition(": ")
    if colon and "." in head and " " not in head:  # dagster._core.errors.X: ... -> X: ...
        line = f"{head.rsplit('.', 1)[1]}: {rest}"
    return line


def failure_notification(
    context: RunFailureSensorContext, settings: NotificationSettings
) -> Notification:
    """The 'run failed' message for the run in ``context``."""
    run = context.dagster_run
    step_errors = {
        event.step_key or "step": step_error(event) for event in context.get_step_failure_events()
    }
    return messages.run_failed(
        run_id=run.run_id,
        job_name=run.job_name,
        partition=run.tags.get(PARTITION_TAG),
        step_errors=step_errors,
        run_error=_first_line(context.failure_event.message),
        failed_checks=run_check_verdicts(context.instance, run.run_id),
        ui_url=settings.ui_url,
    )


def collected_notification(
    instance: DagsterInstance, run_id: str, settings: NotificationSettings
) -> Notification | None:
    """The 'partition collected' message, or None when the run collected no partition."""
    run = instance.get_run_by_id(run_id)
    partition = run.tags.get(PARTITION_TAG) if run else None
    figures = candles_figures(instance, run_id) if partition else None
    if partition is None or figures is None:
        return None
    return messages.partition_collected(
        run_id=run_id,
        partition=partition,
        checks=run_check_verdicts(instance, run_id),
        figures=figures,
        ui_url=settings.ui_url,
    )


# -- Blocking check failures ------------------------------------------------------------------


def check_records_after(
    instance: DagsterInstance, check_keys: Iterable[AssetCheckKey], after: int
) -> list[AssetCheckExecutionRecord]:
    """Executions of ``check_keys`` recorded after storage id ``after``, oldest first."""
    found = []
    for key in check_keys:
        cursor = None  # pages run newest first; stop at the first page reaching ``after``
        while True:
            page = instance.event_log_storage.get_asset_check_execution_history(
                key, limit=CHECK_HISTORY_PAGE, cursor=cursor
            )
            found += [record for record in page if record.id > after]
            if len(page) < CHECK_HISTORY_PAGE or page[-1].id <= after:
                break
            cursor = page[-1].id
    return sorted(found, key=lambda record: record.id)


def blocking_failures(
    instance: DagsterInstance, check_keys: Iterable[AssetCheckKey], after: int
) -> tuple[dict[tuple[str, str | None], list[CheckVerdict]], int]:
    """Failed blocking checks after ``after``, grouped by (run id, partition), and the new cursor.

    The cursor stops before the first execution still planned in a run that is still going, so
    its result is read on a later tick.
    """
    groups: dict[tuple[str, str | None], list[CheckVerdict]] = defaultdict(list)
    cursor = after
    for record in check_records_after(instance, check_keys, after):
        if record.status == AssetCheckExecutionRecordStatus.PLANNED:
            run = instance.get_run_by_id(record.run_id)
            if run is not None and not run.is_finished:
                break
        evaluation = record.event.dagster_event.event_specific_data if record.event else None
        if (
            record.status == AssetCheckExecutionRecordStatus.FAILED
            and evaluation is not None
            and evaluation.blocking
            and not evaluation.passed
        ):
            groups[(record.run_id, record.partition)].append(check_verdict(evaluation))
        cursor = record.id
    return dict(groups), cursor


def latest_check_record_id(instance: DagsterInstance, check_keys: Iterable[AssetCheckKey]) -> int:
    ids = [
        record.id
        for key in check_keys
        for record in instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
    ]
    return max(ids, default=0)


# -- The Upstox token -------------------------------------------------------------------------


def token_notice(
    token: ActiveToken | None,
    problem: str | None,
    cursor: Mapping[str, str],
    now: datetime,
    warn_within: timedelta,
) -> tuple[Notification | None, dict[str, str]]:
    """Decide a token tick: a warning once per deadline, a 'dead' notice once per IST day.

    ``token`` is the token runs would use (None: none configured or stored; ``problem`` then says
    why, e.g. an unreadable store). ``cursor`` holds ``warned`` (the deadline warned about) and
    ``dead_day`` (the IST day a 'dead' notice went out).
    """
    state = dict(cursor)
    today = now.astimezone(IST).date().isoformat()
    deadline = token.expires_at if token else None
    if token is not None and deadline is None:
        return None, state  # a long-lived token: the API says when it stops
    if token is None or (deadline is not None and deadline <= now):
        if state.get("dead_day") == today:
            return None, state
        state["dead_day"] = today
        return (
            messages.token_dead(
                fingerprint=token.fingerprint if token else None,
                source=token.source if token else problem,
                deadline=deadline,
                now=now,
            ),
            state,
        )
    assert deadline is not None
    if deadline - now <= warn_within and state.get("warned") != deadline.isoformat():
        state["warned"] = deadline.isoformat()
        return (
            messages.token_expiring(
                fingerprint=token.fingerprint, source=token.source, deadline=deadline, now=now
            ),
            state,
        )
    return None, state


def upstox_token(upstox: UpstoxApi) -> tuple[ActiveToken | None, str | None]:
    """The token Upstox runs would use now, or None and why (the store could not be read).

    Read from the resource's configuration, not an initialised resource: initialising it
    refuses a dead token, which is exactly when this must still report.
    """
    configured = upstox.access_token
    if isinstance(configured, EnvVar):  # read in this process (the daemon) at this tick
        configured = configured.get_value()
    store = CredentialStore(upstox.credentials_dir)
    try:
        return active_token(configured, store), None
    except CredentialStoreError as exc:
        return None, str(exc)


# -- New partitions ---------------------------------------------------------------------------


def partitions_after(instance: DagsterInstance, cursor: str | None) -> tuple[list[str], str | None]:
    """Partition keys added after ``cursor`` (a storage cursor), oldest first, and the new one."""
    keys: list[str] = []
    while True:
        page = instance.get_paginated_dynamic_partitions(
            expiry_partitions.name, limit=1000, ascending=True, cursor=cursor
        )
        keys += page.results
        cursor = page.cursor or cursor
        if not page.has_more:
            return keys, cursor


def requested_runs(instance: DagsterInstance, keys: Iterable[str]) -> dict[str, str]:
    """The latest run id of each key that has one."""
    runs = {}
    for key in keys:
        found = instance.get_runs(filters=RunsFilter(tags={PARTITION_TAG: key}), limit=1)
        if found:
            runs[key] = found[0].run_id
    return runs


# -- The sensors ------------------------------------------------------------------------------


def notification_sensors(
    settings: NotificationSettings, upstox: UpstoxApi
) -> list[SensorDefinition]:
    """The five notification sensors for ``settings`` (none when no channel is configured);
    ``upstox`` is the configured resource whose token the deadline sensor watches."""
    if not settings.has_channels:
        return []

    @run_failure_sensor(
        name="notify_run_failure",
        minimum_interval_seconds=RUN_SENSOR_INTERVAL_S,
        default_status=DefaultSensorStatus.RUNNING,
        description="Sends a message when a run fails: the failed steps, the partition, the fix.",
    )
    def notify_run_failure(context: RunFailureSensorContext) -> None:
        _send(settings, failure_notification(context, settings), context.log)

    @run_status_sensor(
        name="notify_partition_collected",
        run_status=DagsterRunStatus.SUCCESS,
        minimum_interval_seconds=RUN_SENSOR_INTERVAL_S,
        default_status=DefaultSensorStatus.RUNNING,
        description="Sends a message when a partition's candles were collected, with its checks' verdict.",
    )
    def notify_partition_collected(context: RunStatusSensorContext) -> None:
        notification = collected_notification(
            context.instance, context.dagster_run.run_id, settings
        )
        if notification is not None:
            _send(settings, notification, context.log)

    @sensor(
        name="notify_blocking_check_failed",
        minimum_interval_seconds=CHECK_SENSOR_INTERVAL_S,
        default_status=DefaultSensorStatus.RUNNING,
        description="Sends a message when a blocking asset check fails on a partition.",
    )
    def notify_blocking_check_failed(context: SensorEvaluationContext) -> SkipReason:
        check_keys = list(context.repository_def.asset_graph.asset_check_keys)
        if context.cursor is None:
            start = latest_check_record_id(context.instance, check_keys)
            context.update_cursor(json.dumps({"after": start}))
            return SkipReason(f"started watching check results after record {start}")
        after = int(json.loads(context.cursor)["after"])
        groups, cursor = blocking_failures(context.instance, check_keys, after)
        sent, failures = [], []
        for (run_id, partition), failed in groups.items():
            notification = messages.blocking_check_failed(
                run_id=run_id, partition=partition, failed=failed, ui_url=settings.ui_url
            )
            failures += _send(settings, notification, context.log)
            sent.append(notification)
        context.update_cursor(json.dumps({"after": cursor}))
        return _outcome(sent, failures)

    @sensor(
        name="notify_token_deadline",
        minimum_interval_seconds=TOKEN_SENSOR_INTERVAL_S,
        default_status=DefaultSensorStatus.RUNNING,
        description="Sends a message before the Upstox token dies, and each day while it is dead.",
    )
    def notify_token_deadline(context: SensorEvaluationContext) -> SkipReason:
        if upstox.resolved_source() != "upstox":
            return SkipReason("the data source is the sandbox: no Upstox token to watch")
        token, problem = upstox_token(upstox)
        cursor = json.loads(context.cursor) if context.cursor else {}
        notification, cursor = token_notice(
            token,
            problem,
            cursor,
            datetime.now(IST),
            timedelta(hours=settings.token_warning_hours),
        )
        context.update_cursor(json.dumps(cursor, sort_keys=True))
        if notification is None:
            return _outcome([], [])
        return _outcome([notification], _send(settings, notification, context.log))

    @sensor(
        name="notify_new_partition",
        minimum_interval_seconds=PARTITION_SENSOR_INTERVAL_S,
        default_status=DefaultSensorStatus.RUNNING,
        description="Sends a message when new expiries became partitions.",
    )
    def notify_new_partition(context: SensorEvaluationContext) -> SkipReason:
        state = json.loads(context.cursor) if context.cursor else None
        keys, cursor = partitions_after(context.instance, state["after"] if state else None)
        context.update_cursor(json.dumps({"after": cursor}))
        if state is None:
            return SkipReason(f"started watching partitions ({len(keys)} already exist)")
        ours, _foreign = split_partition_keys(keys)
        if not ours:
            return _outcome([], [])
        notification = messages.new_partitions(ours, requested_runs(context.instance, ours))
        return _outcome([notification], _send(settings, notification, context.log))

    return [
        notify_run_failure,
        notify_partition_collected,
        notify_blocking_check_failed,
        notify_token_deadline,
        notify_new_partition,
    ]
