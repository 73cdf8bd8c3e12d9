"""The live capture's job and schedule: one run per trading session, started before the open."""

from __future__ import annotations

from datetime import datetime

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)

from expirytrack_dagster.calendar import IST, session_for
from expirytrack_dagster.live.assets import oi_snapshots

live_capture_job = define_asset_job(
    name="live_capture",
    selection=AssetSelection.assets(oi_snapshots),
    description="Capture one session day's option-chain snapshots, once a minute until the close.",
)


def session_run_request(moment: datetime) -> RunRequest | SkipReason:
    """The run for the session of ``moment``'s day in IST, or why there is none."""
    day = moment.astimezone(IST).date()
    if session_for(day) is None:
        return SkipReason(f"{day} is not a trading session")
    return RunRequest(partition_key=day.isoformat(), run_key=f"oi_snapshots_{day}")


@schedule(
    cron_schedule="0 9 * * *",
    execution_timezone="Asia/Kolkata",
    job=live_capture_job,
    default_status=DefaultScheduleStatus.STOPPED,
)
def live_capture_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
    """At 09:00 IST on every trading day (special sessions included: the run waits for the open).

    Off by default: a session costs one request per tracked chain per minute (10 chains: 3,750
    requests, about 15 % of the 30-minute budget while it runs). Turn it on in the UI
    (Automation) or with ``dagster schedule start live_capture_schedule``.
    """
    return session_run_request(context.scheduled_execution_time)
