"""Collecting partitions one Dagster run per child process, so that Ctrl-C stops them cleanly.

``expirytrack backfill`` and ``expirytrack demo`` run ``collect_expiry`` once per partition, each
run in a child Python process (``python -m expirytrack_dagster.runs KEY RUN_ID``), so this
process alone decides what a signal means:

- the first Ctrl-C (SIGINT) or SIGTERM marks the current run CANCELING and interrupts it: Dagster
  ends it CANCELED, what it already wrote stays, and no further partition starts;
- a second one kills the child at once and marks its run FAILED.

If this process itself is killed (``kill -9``), the child notices and interrupts its run the same
way. A run whose own process was killed stays STARTED; ``backfill`` and ``demo`` mark such runs
FAILED when they next start (``sensors.fail_orphaned_runs``, which the daemon also runs).

While a run is in flight this process reads its progress from the run log every
``PROGRESS_POLL_S`` and prints it (:class:`RunWatch`): contracts done/total, requests, rate-budget
wait, ETA — on a terminal as one line redrawn in place, otherwise at most one line per
``PROGRESS_EVERY_S``. A run waiting for the ``duckdb_writer`` slot held by another run says so,
naming that run and its partition, here and in its run log, at most once per ``SLOT_WAIT_EVERY_S``.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from expirytrack_dagster.startup_gc import long_lived_objects

if TYPE_CHECKING:  # dagster is imported lazily, as in the CLI
    from dagster import DagsterInstance, DagsterRun

JOB_NAME = "collect_expiry"
PID_TAG = "expirytrack/pid"
"""Run tag: the process executing the run (shown in the UI's run list; it is the one to stop)."""

PROGRESS_POLL_S = 2.0
"""How often the run log and the writer slot are looked at while a run is in flight."""
PROGRESS_EVERY_S = 30.0
"""Off a terminal, at most one progress line per this many seconds (the first at once)."""
SLOT_WAIT_EVERY_S = 30.0
"""At most one "waiting for the duckdb_writer slot" line per this many seconds."""
PROGRESS_MARKERS = ("candles: ", "Waiting for Upstox rate budget")
"""Run-log messages that are progress: the candles step's counts and the rate limiter's waits."""

INTERRUPT_AGAIN_S = 10.0
"""While a run asked to stop is still going, its process is interrupted again this often: an
interrupt that lands while Python runs a garbage-collection callback (e.g. SQLAlchemy closing a
pooled connection) is printed as "Exception ignored" and lost, and the run would go on."""

EXIT_INTERRUPTED = 130
"""Exit code of a command stopped by a signal (128 + SIGINT), as shells report Ctrl-C."""


def _unfinished(instance: DagsterInstance, run_id: str) -> list[DagsterRun]:
    from dagster import DagsterRunStatus, RunsFilter

    statuses = [
        DagsterRunStatus.STARTED,
        DagsterRunStatus.STARTING,
        DagsterRunStatus.NOT_STARTED,
        DagsterRunStatus.CANCELING,
    ]
    return list(instance.get_runs(RunsFilter(statuses=statuses, run_ids=[run_id])))


def _mark_failed(instance: DagsterInstance, run: DagsterRun, message: str) -> None:
    """Mark ``run`` FAILED with ``message`` and free any pool slot it still holds."""
    instance.report_run_failed(run, message=message)
    instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)


@dataclass
class Stopper:
    """Counts SIGINT/SIGTERM while partitions run: one asks to stop, two to stop at once."""

    signals: list[int] = field(default_factory=list)

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.signals.append(signum)
        if len(self.signals) == 1:
            print(
                f"\n{signal.Signals(signum).name}: stopping after the current run is cleaned up "
                "(no further partition starts). Press Ctrl-C again to stop at once.",
                file=sys.stderr,
                flush=True,
            )

    @property
    def requested(self) -> bool:
        """True once a signal arrived."""
        return bool(self.signals)

    @property
    def name(self) -> str:
        """The first signal's name, e.g. ``SIGINT``."""
        return signal.Signals(self.signals[0]).name if self.signals else ""


@contextmanager
def stopper() -> Iterator[Stopper]:
    """Route SIGINT and SIGTERM to a :class:`Stopper` for the ``with`` block."""
    stop = Stopper()
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class RunWatch:
    """Says what a run in flight is doing: its progress lines, and whose slot it waits for."""

    def __init__(self, instance: DagsterInstance, run_id: str, key: str) -> None:
        self.instance, self.run_id, self.key = instance, run_id, key
        self.tty = sys.stdout.isatty()
        self.cursor: str | None = None
        self.latest = ""  # the newest progress message
        self.shown = ""  # the one printed last
        self.next_poll = 0.0
        self.last_line = self.last_slot = -float("inf")
        self.drawn = False

    def poll(self, now: float) -> None:
        """Read what is new and print it, if ``PROGRESS_POLL_S`` passed since the last look."""
        if now < self.next_poll:
            return
        self.next_poll = now + PROGRESS_POLL_S
        self._read_log()
        self._say_slot_wait(now)
        if self.latest and self.latest != self.shown:
            if self.tty:
                self._draw(self.latest)
            elif now - self.last_line >= PROGRESS_EVERY_S:
                self._line(self.latest)
                self.last_line = now

    def _read_log(self) -> None:
        while True:
            page = self.instance.get_records_for_run(self.run_id, cursor=self.cursor, limit=500)
            self.cursor = page.cursor
            for record in page.records:
                entry = record.event_log_entry
                if entry.dagster_event is None and entry.user_message.startswith(PROGRESS_MARKERS):
                    self.latest = entry.user_message
            if not page.has_more:
                return

    def _say_slot_wait(self, now: float) -> None:
        from expirytrack_dagster.storage.database import WRITER_POOL

        if now - self.last_slot < SLOT_WAIT_EVERY_S:
            return
        info = self.instance.event_log_storage.get_concurrency_info(WRITER_POOL)
        waiting = [
            step.step_key
            for step in info.pending_steps
            if step.run_id == self.run_id and step.assigned_timestamp is None
        ]
        holders = [slot for slot in info.claimed_slots if slot.run_id != self.run_id]
        if not waiting or not holders:
            return
        self.last_slot = now
        held = []
        for slot in holders:
            holder = self.instance.get_run_by_id(slot.run_id)
            partition = holder.tags.get("dagster/partition", "no partition") if holder else "?"
            status = holder.status.value if holder else "unknown to this instance"
            held.append(f"run {slot.run_id} ({partition}, step {slot.step_key}, {status})")
        message = (
            f"step {', '.join(waiting)} is waiting for the {WRITER_POOL} slot, held by "
            f"{'; '.join(held)}: it starts when that step ends"
        )
        self._line(message)
        run = self.instance.get_run_by_id(self.run_id)
        if run is not None:
            self.instance.report_engine_event(message, run)

    def _draw(self, text: str) -> None:
        width = shutil.get_terminal_size().columns
        print(f"\r\x1b[K    {self.key}: {text}"[: width + 3], end="", flush=True)
        self.shown, self.drawn = text, True

    def _line(self, text: str) -> None:
        self.clear()
        print(f"    {self.key}: {text}", flush=True)
        self.shown = text

    def clear(self) -> None:
        """Erase the line drawn in place (on a terminal), before other output."""
        if self.drawn:
            print("\r\x1b[K", end="", flush=True)
            self.drawn = False


class StoppedAtOnce(Exception):
    """A second signal stopped the loop without waiting for the run's clean-up."""


def _run_once(
    instance: DagsterInstance, key: str, stop: Stopper, env: Mapping[str, str] | None = None
) -> str:
    """Run ``collect_expiry`` for ``key`` in a child process; return the run's final status.

    ``env``: variables the child gets on top of this process's (the child loads its own
    definitions from them, e.g. the demo's ``EXPIRYTRACK_SOURCE=sandbox``).
    """
    from dagster import DagsterRunStatus

    run_id = str(uuid.uuid4())  # the form of Dagster's own run ids
    child = subprocess.Popen(
        [sys.executable, "-m", "expirytrack_dagster.runs", key, run_id],
        start_new_session=True,  # a terminal's Ctrl-C reaches this process only; it forwards
        env={**os.environ, **env} if env else None,
    )
    forwarded_at: float | None = None
    watch = RunWatch(instance, run_id, key)
    while child.poll() is None:
        watch.poll(time.monotonic())
        if len(stop.signals) >= 2:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            for run in _unfinished(instance, run_id):
                _mark_failed(
                    instance,
                    run,
                    f"Stopped at once by a second {stop.name} to expirytrack: the run was killed "
                    "without clean-up. Collected data is kept; run the partition again.",
                )
            raise StoppedAtOnce(key)
        now = time.monotonic()
        if stop.requested and forwarded_at is None:
            forwarded_at = now
            for run in _unfinished(instance, run_id):
                instance.report_run_canceling(
                    run, message=f"{stop.name} to expirytrack: cancelling this run"
                )
            os.kill(child.pid, signal.SIGINT)  # the run's process only, not its helpers
        elif forwarded_at is not None and now - forwarded_at >= INTERRUPT_AGAIN_S:
            forwarded_at = now  # the first interrupt may have been swallowed: ask again
            with suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGINT)
        with suppress(subprocess.TimeoutExpired):
            child.wait(timeout=0.1)
    watch.clear()
    for run in _unfinished(instance, run_id):  # the child died without finishing its run
        _mark_failed(instance, run, _exit_message(child.returncode))
    run = instance.get_run_by_id(run_id)
    if run is None:
        return "NOT STARTED"
    return "ok" if run.status == DagsterRunStatus.SUCCESS else run.status.value


def _exit_message(returncode: int) -> str:
    """Why a run's process ended mid-run, as it really happened."""
    if returncode < 0:
        name = signal.Signals(-returncode).name
        return (
            f"The process running it was killed by {name} mid-run (not by expirytrack). Data "
            "collected before is kept; run the partition again to finish it."
        )
    return f"The process running it exited with code {returncode} mid-run."


@dataclass
class Outcome:
    """What a loop over partitions did: each started key's final status, and why it stopped."""

    statuses: dict[str, str] = field(default_factory=dict)
    stopped_by: str = ""

    @property
    def failed(self) -> list[str]:
        """Keys whose run did not succeed."""
        return [key for key, status in self.statuses.items() if status != "ok"]


def collect(
    instance: DagsterInstance, keys: list[str], env: Mapping[str, str] | None = None
) -> Outcome:
    """Run ``collect_expiry`` once per key, in order, each in a child process printing one line.

    ``env``: settings variables the children get on top of this process's environment. Stops
    after the current run on the first SIGINT/SIGTERM; raises :class:`StoppedAtOnce` on a second.
    """
    outcome = Outcome()
    with stopper() as stop:
        for key in keys:
            if stop.requested:
                break
            outcome.statuses[key] = _run_once(instance, key, stop, env)
        outcome.stopped_by = stop.name
    return outcome


def report_coverage(instance: DagsterInstance, resources: Mapping[str, Any]) -> bool:
    """Materialise ``coverage_report`` (every partition's completeness and checks) here; one line.

    The demo's last run, so that the table the README shows exists after it. ``resources``: the
    definitions' (``build_definitions(settings).resources``).
    """
    from dagster import materialize

    from expirytrack_dagster.assets.coverage import coverage_report

    started = time.monotonic()
    result = materialize(
        [coverage_report], instance=instance, resources=resources, raise_on_error=False
    )
    verdict = "ok" if result.success else "FAILED (see its run log in the UI)"
    rows = ""
    if result.success:
        metadata = result.asset_materializations_for_node("coverage_report")[0].metadata
        count = metadata.get("dagster/row_count")
        rows = f", {count.value} partitions" if count is not None else ""
    print(
        f"  coverage_report: run {result.run_id[:8]} {verdict} in "
        f"{time.monotonic() - started:.1f}s{rows}",
        flush=True,
    )
    return result.success


def check_summary(evaluations: list) -> str:
    """'quality checks: 10/10 passed' or which failed, with their severity."""
    failed = [e for e in evaluations if not e.passed]
    text = f"quality checks: {len(evaluations) - len(failed)}/{len(evaluations)} passed"
    if failed:
        text += " — failed: " + ", ".join(
            f"{e.check_name} ({e.severity.value})"
            for e in sorted(failed, key=lambda e: e.check_name)
        )
    return text


def _watch_parent() -> None:
    """Interrupt this process's run (as a Ctrl-C would) if the parent process disappears.

    Again every :data:`INTERRUPT_AGAIN_S` until the process ends, as a live parent does: an
    interrupt that lands while Dagster is inside a garbage-collection callback is printed as
    "Exception ignored" and lost, and with the parent gone nobody else would send another. Once
    the run is over SIGINT is ignored (``run_partition``), so a late one changes nothing.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        while True:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(INTERRUPT_AGAIN_S)

    threading.Thread(target=watch, daemon=True, name="expirytrack-parent-watch").start()


def run_partition(key: str, run_id: str) -> int:
    """The child's work: one ``collect_expiry`` run for ``key`` here, one line printed."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    # An interrupt that lands while SQLAlchemy closes one of Dagster's SQLite connections is
    # logged by SQLAlchemy with a traceback before it propagates; the run is then cancelled and
    # this process exits, so that connection no longer matters. Keep the console to one line.
    logging.getLogger("sqlalchemy.pool").setLevel(logging.CRITICAL)
    started = time.monotonic()
    try:
        _watch_parent()
        with long_lived_objects():
            from dagster import DagsterInstance

            from expirytrack_dagster.definitions import defs

            instance = DagsterInstance.get()
        result = defs.resolve_job_def(JOB_NAME).execute_in_process(
            partition_key=key,
            instance=instance,
            raise_on_error=False,
            run_id=run_id,
            tags={PID_TAG: str(os.getpid())},
            # The full event log (tracebacks included) is in the UI; the console shows one line
            # per partition, and why a step failed.
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        )
        # The run is over: an interrupt the parent sends again now has nothing left to stop.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        run = instance.get_run_by_id(run_id)
    except KeyboardInterrupt:
        print(f"  {key}: interrupted before its run started", flush=True)
        return EXIT_INTERRUPTED
    verdict = "ok" if result.success else (run.status.value if run else "FAILED")
    clear = "\r\x1b[K" if sys.stdout.isatty() else ""  # the parent's progress line, if drawn
    print(
        f"{clear}  {key}: run {run_id[:8]} {verdict} in {time.monotonic() - started:.1f}s, "
        f"{check_summary(result.get_asset_check_evaluations())}",
        flush=True,
    )
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            error = event.step_failure_data.error
            reason = "interrupted" if "Interrupted" in error.cls_name else error.message
            print(f"    {event.step_key} failed: {reason.strip().splitlines()[0]}", flush=True)
    return 0 if result.success else 1


if __name__ == "__main__":
    raise SystemExit(run_partition(*sys.argv[1:3]))
