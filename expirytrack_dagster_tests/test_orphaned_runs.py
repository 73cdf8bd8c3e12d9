"""A run killed with SIGKILL is marked failed by the orphaned-run sensor, and its pool slot freed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, SkipReason, build_sensor_context

from expirytrack_dagster.sensors import fail_orphaned_runs, orphaned_run_sensor, process_alive

REPO = Path(__file__).resolve().parents[1]

# A run that takes the only duckdb_writer slot and then blocks, as a candles step would.
HOLDER = """
import time
from dagster import DagsterInstance, job, op

@op(pool="duckdb_writer")
def hold():
    print("HOLDING", flush=True)
    time.sleep(600)

@job
def holder():
    hold()

with DagsterInstance.get() as instance:
    holder.execute_in_process(instance=instance)
"""


def start_holder(home: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "HOLDING"  # blocks until the step holds the slot
    return proc


def slot_holders(instance: DagsterInstance) -> list[str]:
    info = instance.event_log_storage.get_concurrency_info("duckdb_writer")
    return [slot.run_id for slot in info.claimed_slots]


def test_a_killed_run_is_marked_failed_and_its_slot_freed(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "data" / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    proc = start_holder(home)
    try:
        with DagsterInstance.from_config(str(home)) as instance:
            (run,) = instance.get_runs()
            assert run.status == DagsterRunStatus.STARTED
            assert slot_holders(instance) == [run.run_id]
            # Alive: the sensor leaves it alone.
            with build_sensor_context(instance=instance) as context:
                assert orphaned_run_sensor(context).skip_message == "no orphaned runs"
            assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED

            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            assert not process_alive(proc.pid)
            # Killed: Dagster alone would leave it STARTED, holding the slot, forever.
            assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED

            with build_sensor_context(instance=instance) as context:
                result = orphaned_run_sensor(context)
            assert isinstance(result, SkipReason)
            assert result.skip_message == f"marked 1 orphaned run(s) failed: {run.run_id}"
            assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE
            assert slot_holders(instance) == []
            failure = [
                e for e in instance.all_logs(run.run_id) if "no process" in (e.message or "")
            ]
            assert f"pid {proc.pid}" in failure[0].message
            assert fail_orphaned_runs(instance) == []  # once only
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
