"""The one Dagster ``Definitions`` object: assets, checks, sensors, the job, and resources.

``build_definitions(settings)`` builds it from the typed settings (``project_settings``: defaults,
then ``data/expirytrack.yaml``, then the environment); the module-level ``defs`` is that for the
settings of this process, for ``dagster dev`` and ``workspace.yaml``. The ``upstox`` resource is
chosen explicitly by the settings' source: the real API (``UpstoxResource``: runs collect with
``UPSTOX_ACCESS_TOKEN`` or the ``expirytrack login`` token, and fail before their first request
without one) or, only on purpose (``expirytrack demo``, ``EXPIRYTRACK_SOURCE=sandbox`` or
``upstox: {source: sandbox}``), the synthetic sandbox (``SandboxResource``), whose data goes to
its own stores under ``data/sandbox/``; each database records its source and refuses the other.
Every setting is validated when the settings load (``dagster definitions validate``, the UI, the
CLI): a typo or a value that is not allowed stops loading with ``SettingsError``, one line naming
the key, the value and what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import AssetSelection, Definitions, define_asset_job, in_process_executor

from expirytrack_dagster import pool_wait
from expirytrack_dagster.assets import candles, contracts, expiries, index_candles
from expirytrack_dagster.assets.coverage import coverage_report, coverage_report_sensor
from expirytrack_dagster.assets.research import RESEARCH_ASSETS, research_sensor
from expirytrack_dagster.checks import ALL_CHECKS, RESEARCH_CHECKS
from expirytrack_dagster.exports.job import export_data
from expirytrack_dagster.live.assets import oi_snapshots
from expirytrack_dagster.live.clock import SessionClock
from expirytrack_dagster.live.schedules import live_capture_job, live_capture_schedule
from expirytrack_dagster.notifications import notification_sensors
from expirytrack_dagster.project_settings import ExpiryTrackSettings, load_settings
from expirytrack_dagster.sensors import new_expiry_sensor, orphaned_run_sensor
from expirytrack_dagster.storage.io_manager import ExpiryTrackIOManager

pool_wait.apply()  # runs waiting for the duckdb_writer slot sleep (see pool_wait)

collect_expiry_job = define_asset_job(
    name="collect_expiry",
    selection=AssetSelection.assets(expiries, contracts, index_candles, candles),
    description=(
        "Collect one (underlying, expiry) partition: expiry record, contracts, the underlying's "
        "own candles, candles."
    ),
)


def build_definitions(
    settings: ExpiryTrackSettings | Mapping[str, Any] | None = None,
) -> Definitions:
    """Definitions for ``settings``: loaded ones, or a settings file's content as a mapping
    (layered under the environment like the file), or when None this process's settings."""
    if not isinstance(settings, ExpiryTrackSettings):
        settings = load_settings(settings)
    upstox, collection = settings.upstox, settings.collection
    return Definitions(
        assets=[
            expiries,
            contracts,
            index_candles,
            candles,
            coverage_report,
            *RESEARCH_ASSETS,
            oi_snapshots,
        ],
        asset_checks=[*ALL_CHECKS, *RESEARCH_CHECKS],
        sensors=[
            new_expiry_sensor,
            orphaned_run_sensor,
            coverage_report_sensor,
            research_sensor,
            *notification_sensors(settings.notifications, upstox),
        ],
        jobs=[collect_expiry_job, export_data, live_capture_job],
        # Every step that writes claims the one duckdb_writer slot, so a run's steps never run
        # side by side: a process per step (Dagster's default executor) would only add ~3 s of
        # imports to each. In-process, a run's steps take turns in the run's own process.
        executor=in_process_executor,
        schedules=[live_capture_schedule],
        resources={
            "upstox": upstox,
            "collection": collection,
            "research": settings.research,
            "live": settings.live,
            "live_clock": SessionClock(),
            "io_manager": ExpiryTrackIOManager(
                database=collection.database,
                schema="main",
                source=settings.data_source,
                landing_dir=collection.landing_dir,
            ),
        },
    )


defs = build_definitions(load_settings())
