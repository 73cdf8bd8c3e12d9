"""`expirytrack backfill` as a real CLI process: stopping it by signals, runs a kill orphaned, the
progress it prints, and whose writer slot a run waits for."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import duckdb
from dagster import AssetKey, DagsterRun, DagsterRunStatus

from expirytrack_dagster.runs import PID_TAG, PROGRESS_EVERY_S, _exit_message
from expirytrack_dagster.sandbox import SandboxConfig
from expirytrack_dagster.sandbox.faults import FaultConfig
from expirytrack_dagster_tests.cli_project import Cli, cli, project_sandbox

UNFINISHED = (DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.CANCELING)


def slow_candles(seconds: float) -> SandboxConfig:
    """Every expired-contract candle request (not the index's) takes ``seconds``: a run is surely
    in flight when the signal comes."""
    return project_sandbox(
        faults=FaultConfig(
            slow=1.0, slow_seconds=seconds, only_paths=("expired-instruments/historical-candle",)
        ),
    )


def wait_for(condition, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def in_flight(c: Cli) -> bool:
    """A run is STARTED and has written its contracts: its candle requests hang in the sandbox."""
    runs = c.instance.get_runs()
    return (
        bool(runs)
        and runs[0].status == DagsterRunStatus.STARTED
        and bool(c.instance.get_latest_materialization_event(AssetKey("contracts")))
    )


def contracts_of(c: Cli, key: str) -> int:
    with duckdb.connect(str(c.root / "expirytrack.duckdb"), read_only=True) as db:
        return db.execute(
            "SELECT count(*) FROM contracts WHERE partition_key = ?", [key]
        ).fetchone()[0]


class Lines:
    """The lines a process prints on stdout, collected by a thread as they come.

    This thread is stdout's only reader: ``finish`` waits for the process and returns its
    stderr (``communicate`` would read stdout too, taking lines from it and closing the pipe
    under it).
    """

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def first(self, pattern: str) -> re.Match[str] | None:
        return next(filter(None, (re.search(pattern, line) for line in self.lines)), None)

    def finish(self, timeout: float) -> str:
        """Wait for the process to exit (read its stderr meanwhile, so that it cannot block on
        a full pipe) and for every stdout line; return stderr."""
        assert self.process.stderr is not None
        err: list[str] = []
        reader = threading.Thread(
            target=lambda: err.append(self.process.stderr.read()), daemon=True
        )
        reader.start()
        self.process.wait(timeout=timeout)
        reader.join(timeout=10)
        self.thread.join(timeout=10)
        return err[0] if err else ""


PROGRESS = (
    r"^    (RELIANCE_\d{4}-\d\d-\d\d): candles: (\d+)/(\d+) contracts, \d+ requests, "
    r"\d+ s waited for rate budget, ETA (unknown|\d+ s)$"
)


def test_first_signal_stops_after_the_current_run_is_cleaned_up(tmp_path: Path) -> None:
    """Also: while the run is in flight, backfill prints its progress (one line, off a terminal).

    SIGTERM goes through the same stopper as SIGINT; it is the signal of the start-up test below.
    """
    signum = signal.SIGINT
    with cli(tmp_path, slow_candles(3600)) as c:
        process = c.start("backfill", "RELIANCE", "--yes")
        out = Lines(process)
        wait_for(lambda: in_flight(c) and out.first(PROGRESS), "a run in flight, its progress")
        first_line_seen = time.monotonic()
        process.send_signal(signum)
        err = out.finish(timeout=90)
        printing = time.monotonic() - first_line_seen
        runs = c.runs()
    assert process.returncode == 130, err[-3000:]
    assert any("partitions of RELIANCE" in line for line in out.lines)
    assert len(runs) == 1  # the loop stopped: no further partition started
    assert runs[0].status == DagsterRunStatus.CANCELED
    assert contracts_of(c, runs[0].tags["dagster/partition"]) > 0  # what it wrote is kept
    assert f"Stopped by {signal.Signals(signum).name} after 1 run of" in err
    assert "Traceback" not in err
    match = out.first(PROGRESS)
    assert match.group(1) == runs[0].tags["dagster/partition"]
    assert int(match.group(2)) == 0 and int(match.group(3)) > 0 and match.group(4) == "unknown"
    # Off a terminal: no redrawing escapes, and at most one line per PROGRESS_EVERY_S (a slow
    # stop on a loaded machine may rightly print a second one after 30 s).
    assert not any("\x1b" in line or "\r" in line for line in out.lines)
    lines = sum(bool(re.search(PROGRESS, line)) for line in out.lines)
    assert 1 <= lines <= 1 + int(printing // PROGRESS_EVERY_S)


def test_a_signal_while_the_run_starts_up_still_stops_it(tmp_path: Path) -> None:
    """Stopped by SIGTERM (as a service manager stops it) as early as its run exists, the run
    still ends: an interrupt swallowed while the run's process was in a garbage-collection
    callback is sent again, not lost (the candle requests hang for an hour, so a lost interrupt
    would hang this test until its timeout)."""
    with cli(tmp_path, slow_candles(3600)) as c:
        process = c.start("backfill", "RELIANCE", "--yes")
        wait_for(lambda: bool(c.runs()), "the run to be created")
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
        runs = c.runs()
    assert process.returncode == 130, err[-3000:]
    assert len(runs) == 1 and runs[0].status not in UNFINISHED
    assert "Stopped by SIGTERM after 1 run of" in err


def test_second_ctrl_c_stops_at_once_and_leaves_no_run_started(tmp_path: Path) -> None:
    with cli(tmp_path, slow_candles(3600)) as c:
        process = c.start("backfill", "RELIANCE", "--yes")
        wait_for(lambda: in_flight(c), "a run in flight")
        process.send_signal(signal.SIGINT)
        # Two pending signals of one kind merge into one (POSIX does not queue them), so the
        # second stop signal is a SIGTERM: a loaded machine cannot fold it into the first.
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
        runs = c.runs()
    assert process.returncode == 130, err[-3000:]
    assert len(runs) == 1 and runs[0].status == DagsterRunStatus.FAILURE
    assert "stopped at once" in err and "marked failed" in err
    assert "Traceback" not in err


def test_sigkill_of_the_cli_does_not_leave_its_run_started(tmp_path: Path) -> None:
    with cli(tmp_path, slow_candles(3600)) as c:
        process = c.start("backfill", "RELIANCE", "--yes")
        wait_for(lambda: in_flight(c), "a run in flight")
        process.kill()
        process.communicate(timeout=30)
        # The run's own process sees its parent gone and interrupts the run.
        wait_for(lambda: c.runs()[0].status not in UNFINISHED, "the run to end")
        assert len(c.runs()) == 1 and c.runs()[0].status == DagsterRunStatus.FAILURE


def test_backfill_marks_the_run_a_sigkill_orphaned(tmp_path: Path) -> None:
    with cli(tmp_path, slow_candles(3600)) as c:
        process = c.start("backfill", "RELIANCE", "--yes")
        wait_for(lambda: in_flight(c), "a run in flight")
        (run,) = c.runs()
        os.kill(int(run.tags[PID_TAG]), signal.SIGKILL)  # the run's process, as the OOM killer
        process.kill()
        process.communicate(timeout=30)
        assert c.runs()[0].status == DagsterRunStatus.STARTED  # orphaned
        done = c.run("backfill", "RELIANCE", "--since", "2030-01-01", "--yes")
        (after,) = c.runs()
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Marked 1 run failed whose process is gone (killed earlier): {run.run_id[:8]}" in (
        done.stderr
    )
    assert after.status == DagsterRunStatus.FAILURE


def test_a_run_waiting_for_the_writer_slot_names_the_run_holding_it(tmp_path: Path) -> None:
    with cli(tmp_path, project_sandbox()) as c:
        holder = str(uuid.uuid4())
        c.instance.add_run(
            DagsterRun(
                job_name="collect_expiry",
                run_id=holder,
                status=DagsterRunStatus.STARTED,
                tags={"dagster/partition": "RELIANCE_2025-01-30"},
            )
        )
        # As the first run to use the pool would: its one slot, from dagster.yaml.
        storage = c.instance.event_log_storage
        assert storage.initialize_concurrency_limit_to_default("duckdb_writer")
        assert storage.claim_concurrency_slot("duckdb_writer", holder, "candles").is_claimed
        process = c.start("backfill", "RELIANCE", "--yes", "--limit", "1")
        out = Lines(process)
        waiting = rf"^    (RELIANCE_\S+): step \w+ is waiting for the duckdb_writer slot, held by run {holder} \(RELIANCE_2025-01-30, step candles, STARTED\)"
        wait_for(lambda: out.first(waiting), "the line saying whose slot the run waits for")
        storage.free_concurrency_slots_for_run(holder)
        err = out.finish(timeout=120)
        runs = [r for r in c.runs() if r.run_id != holder]
        logged = [
            e.message
            for e in c.instance.all_logs(runs[0].run_id)
            if "duckdb_writer slot" in e.message
        ]
    assert process.returncode == 0, err[-3000:]
    assert len(runs) == 1 and runs[0].status == DagsterRunStatus.SUCCESS
    assert out.first(waiting).group(1) == runs[0].tags["dagster/partition"]
    assert logged and holder in logged[0]  # in the run's own log too, for the UI


def test_a_killed_run_process_is_said_to_be_killed_by_its_signal() -> None:
    assert "killed by SIGKILL mid-run" in _exit_message(-signal.SIGKILL)
    assert "memory" not in _exit_message(-signal.SIGKILL)
    assert _exit_message(1) == "The process running it exited with code 1 mid-run."
