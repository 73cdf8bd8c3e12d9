"""A run waiting for the duckdb_writer slot sleeps between claim checks instead of spinning."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from dagster import (
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    asset,
    instance_for_test,
    materialize,
)
from dagster._core.execution.plan.active import ActiveExecution
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

from expirytrack_dagster import definitions
from expirytrack_dagster.pool_wait import seconds_to_next_claim_check
from expirytrack_dagster.storage.database import WRITER_POOL

POOLS = {"concurrency": {"pools": {"granularity": "op", "default_limit": 1}}}


@asset(pool=WRITER_POOL)
def writer() -> int:
    return 1


def test_the_project_applies_it_and_runs_steps_in_the_run_process() -> None:
    assert InstanceConcurrencyContext.interval_to_next_pending_claim_check is (
        seconds_to_next_claim_check
    )
    job = definitions.defs.resolve_job_def("collect_expiry")
    assert job.executor_def.name == "in_process"


def test_the_wait_is_the_time_to_the_next_claim_check() -> None:
    with instance_for_test(overrides=POOLS) as instance:
        run = instance.add_run(DagsterRun(job_name="x", run_id=str(uuid.uuid4())))
        context = InstanceConcurrencyContext(instance, run)
        assert seconds_to_next_claim_check(context) == 0.0  # nothing pending
        context._pending_claims.add("a")
        context._pending_timeouts["a"] = time.time() + 4.0
        context._pending_timeouts["b"] = time.time() + 9.0
        assert 3.0 < seconds_to_next_claim_check(context) <= 4.0  # the earliest
        context._pending_timeouts["a"] = time.time() - 1.0
        assert seconds_to_next_claim_check(context) == 0.0  # overdue: now, never negative


@pytest.fixture
def held_slot():
    """An instance whose one duckdb_writer slot is held by another (STARTED) run."""
    with instance_for_test(overrides=POOLS) as instance:
        holder = str(uuid.uuid4())
        instance.add_run(DagsterRun(job_name="x", run_id=holder, status=DagsterRunStatus.STARTED))
        storage = instance.event_log_storage
        assert storage.initialize_concurrency_limit_to_default(WRITER_POOL)
        assert storage.claim_concurrency_slot(WRITER_POOL, holder, "candles").is_claimed
        yield instance, holder


def test_a_run_waiting_for_the_slot_sleeps_then_runs_when_it_is_freed(
    held_slot: tuple[DagsterInstance, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    instance, holder = held_slot
    looks = []
    get_next_step = ActiveExecution.get_next_step

    def counted(self: ActiveExecution):
        looks.append(time.monotonic())
        return get_next_step(self)

    monkeypatch.setattr(ActiveExecution, "get_next_step", counted)
    results = []
    run = threading.Thread(target=lambda: results.append(materialize([writer], instance=instance)))
    run.start()
    deadline = time.monotonic() + 120
    while not looks:  # however loaded the machine, until the run is at its first look
        assert time.monotonic() < deadline and run.is_alive(), "the run never looked for a step"
        time.sleep(0.05)
    first = len(looks)
    time.sleep(3.0)
    waiting_looks = len(looks) - first
    instance.event_log_storage.free_concurrency_slots_for_run(holder)
    run.join(timeout=60)
    assert results and results[0].success  # it claimed the freed slot and ran
    # Claim checks are 1 s apart at first (Dagster's back-off): a few looks in 3 s. The loop
    # Dagster 1.13 runs without the fix looks hundreds of thousands of times.
    assert waiting_looks <= 10, waiting_looks
