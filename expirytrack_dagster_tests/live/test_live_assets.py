"""The ``oi_snapshots`` asset and its schedule, run by Dagster against the in-process sandbox."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from dagster import DagsterInstance, RunRequest, SkipReason, materialize

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.definitions import build_definitions
from expirytrack_dagster.live.assets import oi_snapshots
from expirytrack_dagster.live.clock import SteppedClock
from expirytrack_dagster.live.schedules import session_run_request
from expirytrack_dagster.live.store import SnapshotStore
from expirytrack_dagster.sandbox import SandboxConfig, run_sandbox
from expirytrack_dagster.sandbox_resource import SandboxResource
from expirytrack_dagster.settings import CollectionSettings

DAY = date(2026, 11, 20)


def test_a_run_captures_the_rest_of_the_session_into_its_own_file(tmp_path: Path) -> None:
    database = tmp_path / "db" / "expirytrack.duckdb"
    with run_sandbox(SandboxConfig(today=DAY), in_process=True) as sb:
        live = sb.state.live
        live.clock.set(datetime(2026, 11, 20, 15, 28, tzinfo=IST), speed=0)
        result = materialize(
            [oi_snapshots],
            partition_key=DAY.isoformat(),
            instance=DagsterInstance.ephemeral(),
            resources={
                "upstox": SandboxResource(
                    sandbox_url=sb.base_url,
                    sandbox_token=sb.access_token,
                    state_dir=str(tmp_path / "state"),
                    max_attempts=1,
                ),
                "collection": CollectionSettings(database=str(database)),
                "live_clock": SteppedClock(live.clock.now, lambda m: live.clock.set(m, speed=0)),
            },
            run_config={"ops": {"oi_snapshots": {"config": {"underlyings": ["NIFTY"]}}}},
        )
    assert result.success
    meta = {
        k: v.value
        for k, v in result.asset_materializations_for_node("oi_snapshots")[0].metadata.items()
    }
    assert meta["chains_stored"] == 2 * 3  # 15:28 … 15:30, both tracked expiries
    assert meta["chains_missed"] == 2 * (375 - 3)  # the minutes before the run started
    assert meta["minutes_expected"] == 375
    stored = SnapshotStore(tmp_path / "db" / "live", DAY).snapshots()
    assert stored["captured_at"].nunique() == 3 and meta["rows_stored"] == len(stored)
    assert not database.exists()  # the candle database is never touched


def test_schedule_runs_trading_days_only_and_definitions_load() -> None:
    request = session_run_request(datetime(2026, 11, 20, 9, 0, tzinfo=IST))
    assert isinstance(request, RunRequest) and request.partition_key == "2026-11-20"
    assert isinstance(session_run_request(datetime(2026, 11, 21, 9, 0, tzinfo=IST)), SkipReason)
    defs = build_definitions({})
    assert defs.resolve_schedule_def("live_capture_schedule").job_name == "live_capture"
    assert "2026-11-20" in defs.resolve_job_def("live_capture").partitions_def.get_partition_keys(
        current_time=datetime(2026, 11, 20, 10, tzinfo=IST)
    )
