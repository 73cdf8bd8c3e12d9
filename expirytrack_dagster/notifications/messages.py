"""The messages: what happened, which partition, and the next step, one builder per event.

Builders are pure functions of plain values (run ids, check verdicts, deadlines), so the exact
wording is tested without Dagster; the sensors gather those values from the Dagster instance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from expirytrack_dagster.credentials.deadline import describe_deadline, format_duration
from expirytrack_dagster.credentials.guard import LOGIN_FIX
from expirytrack_dagster.partitions import parse_partition_key

PREFIX = "[ExpiryTrack]"
ELLIPSIS = " …"


@dataclass(frozen=True)
class Notification:
    """One message for every channel: a title line and three labelled parts."""

    event: str  # one of settings.EVENTS
    title: str
    happened: str
    partition: str | None
    next_step: str
    link: str | None = None

    def text(self, limit: int | None = None) -> str:
        """The message as plain text; with ``limit``, ``happened`` is shortened to fit."""
        head = f"{PREFIX} {self.title}\n\nWhat happened: "
        tail = f"\nPartition: {self.partition or 'none'}\nNext step: {self.next_step}"
        if self.link:
            tail += f"\nDagster UI: {self.link}"
        happened = self.happened
        if limit is not None and len(head) + len(happened) + len(tail) > limit:
            room = max(0, limit - len(head) - len(tail) - len(ELLIPSIS))
            happened = happened[:room].rstrip() + ELLIPSIS
        return f"{head}{happened}{tail}"

    @property
    def subject(self) -> str:
        return f"{PREFIX} {self.title}"


@dataclass(frozen=True)
class CheckVerdict:
    """One asset check's result in a run: name, pass/fail, severity, blocking, summary line."""

    check_name: str
    passed: bool
    severity: str  # "ERROR" or "WARN"
    blocking: bool
    summary: str | None = None

    def describe(self) -> str:
        kind = "blocking" if self.blocking else self.severity
        line = f"{self.check_name} ({kind})"
        return f"{line}: {self.summary}" if self.summary else line


def rerun_command(partition: str | None) -> str:
    """How to collect exactly ``partition`` again (only days not final are asked again)."""
    try:
        key = parse_partition_key(partition or "")
    except ValueError:
        return "re-execute the run from the Dagster UI"
    day = key.expiry.isoformat()
    return f"`expirytrack backfill {key.symbol} --since {day} --until {day}`"


def run_link(ui_url: str | None, run_id: str) -> str | None:
    return f"{ui_url}/runs/{run_id}" if ui_url else None


def run_failed(
    *,
    run_id: str,
    job_name: str,
    partition: str | None,
    step_errors: Mapping[str, str],
    run_error: str | None,
    failed_checks: Sequence[CheckVerdict] = (),
    ui_url: str | None = None,
) -> Notification:
    """A run failed: its failed steps and first error lines; the fix depends on the cause."""
    where = f" for {partition}" if partition else ""
    parts = [f"Run {run_id[:8]} of job {job_name}{where} failed."]
    if step_errors:
        parts.append("Failed steps: " + "; ".join(f"{s}: {e}" for s, e in step_errors.items()))
    elif run_error:
        parts.append(run_error)
    blocking = [c for c in failed_checks if c.blocking and not c.passed]
    if blocking:
        parts.append("Blocking checks failed: " + "; ".join(c.describe() for c in blocking))
    errors = " ".join([*step_errors.values(), run_error or ""])
    again = rerun_command(partition)
    if "expirytrack login" in errors:
        next_step = f"Log in again: {LOGIN_FIX}; then collect it again: {again}."
    elif blocking:
        next_step = (
            "Read the failed checks' metadata in the Dagster UI (asset candles, Checks tab, "
            f"this partition); once the cause is fixed, collect it again: {again}."
        )
    else:
        next_step = (
            f"Read the run's log in the Dagster UI, fix the cause, then collect it again: {again}."
        )
    return Notification(
        "run_failed",
        f"Run failed{': ' + partition if partition else ''}",
        " ".join(parts),
        partition,
        next_step,
        run_link(ui_url, run_id),
    )


def partition_collected(
    *,
    run_id: str,
    partition: str,
    checks: Sequence[CheckVerdict],
    figures: Mapping[str, int | float],
    ui_url: str | None = None,
) -> Notification:
    """A partition's collection run succeeded; the verdict is its checks' results."""
    failed = [c for c in checks if not c.passed]
    if not checks:
        verdict = "no quality checks ran"
    elif failed:
        verdict = f"{len(failed)} of {len(checks)} checks failed"
    else:
        verdict = f"all {len(checks)} checks passed"
    shown = ", ".join(f"{name}={value:,}" for name, value in figures.items())
    parts = [f"Run {run_id[:8]} collected {partition}" + (f" ({shown})." if shown else ".")]
    parts.append(f"Verdict: {verdict}.")
    if failed:
        parts.append("Failed: " + "; ".join(c.describe() for c in failed))
    if not checks:
        next_step = (
            "Run its checks for a verdict: Dagster UI, asset candles, Checks tab, Execute "
            "for this partition."
        )
    elif failed:
        next_step = (
            "Nothing blocks this partition (warnings only); read the failed checks in the "
            "Dagster UI (asset candles, Checks tab) if those gaps matter to your backtest."
        )
    else:
        next_step = "Nothing to do: the partition is ready to query."
    return Notification(
        "partition_collected",
        f"Partition collected: {partition}, {verdict}",
        " ".join(parts),
        partition,
        next_step,
        run_link(ui_url, run_id),
    )


def blocking_check_failed(
    *,
    run_id: str,
    partition: str | None,
    failed: Sequence[CheckVerdict],
    ui_url: str | None = None,
) -> Notification:
    """Blocking checks failed on a partition: downstream assets did not run for it."""
    names = ", ".join(c.check_name for c in failed)
    where = f" on {partition}" if partition else ""
    happened = (
        f"{len(failed)} blocking check{'s' if len(failed) > 1 else ''} failed{where} in run "
        f"{run_id[:8]}: " + "; ".join(c.describe() for c in failed) + ". Assets downstream of "
        "the checked one were not updated for this partition."
    )
    again = rerun_command(partition)
    next_step = (
        "Read the checks' metadata in the Dagster UI (asset candles, Checks tab: worst "
        f"contracts and sample rows); once the cause is fixed, collect it again: {again}."
    )
    return Notification(
        "blocking_check_failed",
        f"Blocking check failed: {names}{where}",
        happened,
        partition,
        next_step,
        run_link(ui_url, run_id),
    )


def token_expiring(
    *, fingerprint: str, source: str, deadline: datetime, now: datetime
) -> Notification:
    """The Upstox token dies soon; runs and the new-expiry sensor stop when it does."""
    return Notification(
        "token_deadline",
        f"Upstox token dies in {format_duration(deadline - now)}",
        f"The Upstox token {fingerprint} from the {source} {describe_deadline(deadline, now)}. "
        "After that no run can collect and the new-expiry sensor skips its ticks.",
        None,
        f"Before then, {LOGIN_FIX}.",
    )


def token_dead(
    *, fingerprint: str | None, source: str | None, deadline: datetime | None, now: datetime
) -> Notification:
    """No usable Upstox token (dead, absent or unreadable): said once at the start of each day."""
    if fingerprint is None:
        what = "No Upstox access token is configured or stored"
        if source:
            what += f" ({source})"
    else:
        what = (
            f"The Upstox token {fingerprint} from the {source} {describe_deadline(deadline, now)}"
        )
    return Notification(
        "token_deadline",
        "Upstox token is dead: collection is stopped",
        f"{what}. No run can collect and the new-expiry sensor skips its ticks until a new "
        "token is in place.",
        None,
        f"{LOGIN_FIX[0].upper()}{LOGIN_FIX[1:]}.",
    )


def new_partitions(keys: Sequence[str], runs: Mapping[str, str]) -> Notification:
    """New expiries became partitions; ``runs`` maps the keys that already have a run to its id."""
    if len(keys) == 1:
        key = keys[0]
        partition: str | None = key
        title = f"New expiry partition: {key}"
        happened = f"The expiry {key} became a partition."
    else:
        partition = ", ".join(keys[:10]) + (f" and {len(keys) - 10} more" if len(keys) > 10 else "")
        title = f"{len(keys)} new expiry partitions"
        happened = f"{len(keys)} expiries became partitions."
    waiting = [key for key in keys if key not in runs]
    if runs:
        happened += " A collection run is already requested for " + ", ".join(
            f"{key} (run {run_id[:8]})" for key, run_id in runs.items()
        )
        happened += "."
    if not waiting:
        next_step = "Nothing to do: a 'Partition collected' message follows when the run ends."
    elif len(waiting) == 1:
        next_step = f"Collect it when you choose: {rerun_command(waiting[0])}."
    else:
        symbols = sorted({parse_partition_key(key).symbol for key in waiting})
        commands = ", ".join(f"`expirytrack backfill {s} --missing`" for s in symbols)
        next_step = f"Collect the {len(waiting)} without a run when you choose: {commands}."
    return Notification("new_partition", title, happened, partition, next_step)
