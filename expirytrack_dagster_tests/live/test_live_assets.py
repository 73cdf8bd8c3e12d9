"""The ``oi_snapshots`` asset and its schedule, run by Dagster against the in-process sandbox."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pandas as pd
from dagster import DagsterInstance, RunRequest, SkipReason, materialize

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.definitions import build_definitions
from expirytrack_dagster.live.assets import oi_snapshots
from expirytrack_dagster.live.clock import SteppedClock
from expirytrack_dagster.live.schedules import session_run_request
from expirytrack_dagster.live.settings import LiveSettings
from expirytrack_dagster.live.store import SnapshotStore
from expirytrack_dagster.project_settings import load_settings
from expirytrack_dagster.sandbox import SandboxConfig, run_sandbox
from expirytrack_dagster.sandbox_resource import SandboxResource
from expirytrack_dagster.settings import CollectionSettings

DAY = date(2026, 11, 20)


def _capture_last_minutes(
    tmp_path: Path, live: LiveSettings, run_config: dict | None = None
) -> tuple[dict, pd.DataFrame, Path]:
    """A run of 2026-11-20 started at 15:28 IST (three minutes left): metadata, stored rows."""
    database = tmp_path / "db" / "expirytrack.duckdb"
    with run_sandbox(SandboxConfig(today=DAY), in_process=True) as sb:
        clock = sb.state.live.clock
        clock.set(datetime(2026, 11, 20, 15, 28, tzinfo=IST), speed=0)
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
                "live": live,
                "live_clock": SteppedClock(clock.now, lambda m: clock.set(m, speed=0)),
            },
            run_config=run_config,
        )
    assert result.success
    meta = {
        k: v.value
        for k, v in result.asset_materializations_for_node("oi_snapshots")[0].metadata.items()
    }
    return meta, SnapshotStore(tmp_path / "db" / "live", DAY).snapshots(), database


def test_a_run_captures_the_rest_of_the_session_into_its_own_file(tmp_path: Path) -> None:
    # The run's config wins over the live settings (which name another underlying).
    meta, stored, database = _capture_last_minutes(
        tmp_path,
        LiveSettings(underlyings=["BANKNIFTY"]),
        {"ops": {"oi_snapshots": {"config": {"underlyings": ["NIFTY"]}}}},
    )
    assert meta["chains_stored"] == 2 * 3  # 15:28 … 15:30, both tracked expiries
    assert meta["chains_missed"] == 2 * (375 - 3)  # the minutes before the run started
    assert meta["minutes_expected"] == 375
    assert stored["captured_at"].nunique() == 3 and meta["rows_stored"] == len(stored)
    assert set(stored["underlying_symbol"]) == {"NIFTY"}
    assert not database.exists()  # the candle database is never touched


def test_without_run_config_a_run_captures_what_the_settings_files_live_section_names(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        config={"live": {"underlyings": ["BANKNIFTY"], "expiries": ["nearest"]}}, env={}
    )
    meta, stored, _ = _capture_last_minutes(tmp_path, settings.live)
    assert meta["chains_stored"] == 1 * 3  # one underlying, one expiry, three minutes
    assert set(stored["underlying_symbol"]) == {"BANKNIFTY"}
    assert stored["expiry"].nunique() == 1


def test_schedule_runs_trading_days_only_and_definitions_load() -> None:
    request = session_run_request(datetime(2026, 11, 20, 9, 0, tzinfo=IST))
    assert isinstance(request, RunRequest) and request.partition_key == "2026-11-20"
    assert isinstance(session_run_request(datetime(2026, 11, 21, 9, 0, tzinfo=IST)), SkipReason)
    defs = build_definitions({})
    assert defs.resolve_schedule_def("live_capture_schedule").job_name == "live_capture"
    assert "2026-11-20" in defs.resolve_job_def("live_capture").partitions_def.get_partition_keys(
        current_time=datetime(2026, 11, 20, 10, tzinfo=IST)
    )
