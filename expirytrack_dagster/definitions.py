"""The one Dagster ``Definitions`` object: assets, checks, the new-expiry sensor, the job, resources.

Configuration comes from the environment and ``data/expirytrack.yaml`` (see README):
``UPSTOX_ACCESS_TOKEN`` selects the real API; without it the built-in sandbox serves synthetic data.
"""

from __future__ import annotations

import os
from typing import Any

from dagster import AssetSelection, Definitions, EnvVar, define_asset_job

from expirytrack_dagster.assets import candles, contracts, expiries
from expirytrack_dagster.assets.coverage import coverage_report, coverage_report_sensor
from expirytrack_dagster.checks import ALL_CHECKS
from expirytrack_dagster.instruments import load_user_config
from expirytrack_dagster.resources import UpstoxResource
from expirytrack_dagster.sensors import new_expiry_sensor
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster.storage.io_manager import ExpiryTrackIOManager

collect_expiry_job = define_asset_job(
    name="collect_expiry",
    selection=AssetSelection.assets(expiries, contracts, candles),
    description="Collect one (underlying, expiry) partition: expiry record, contracts, candles.",
)


def upstox_resource_from_env(settings: dict[str, Any] | None = None) -> UpstoxResource:
    """The Upstox resource as the environment and the ``upstox:`` settings describe it.

    The token is passed as ``EnvVar`` so its value never lands in run configuration or the UI.
    """
    fields: dict[str, Any] = dict(settings or {})
    if os.environ.get("UPSTOX_ACCESS_TOKEN"):
        fields["access_token"] = EnvVar("UPSTOX_ACCESS_TOKEN")
    for env, name in (
        ("EXPIRYTRACK_SOURCE", "source"),
        ("EXPIRYTRACK_SANDBOX_URL", "sandbox_url"),
        ("EXPIRYTRACK_SANDBOX_TOKEN", "sandbox_token"),
        ("EXPIRYTRACK_SANDBOX_CA", "ca_cert_path"),
        ("EXPIRYTRACK_STATE_DIR", "state_dir"),
    ):
        if os.environ.get(env):
            fields[name] = os.environ[env]
    if os.environ.get("EXPIRYTRACK_TIME_SCALE"):
        fields["time_scale"] = float(os.environ["EXPIRYTRACK_TIME_SCALE"])
    return UpstoxResource(**fields)


def build_definitions(config: dict[str, Any] | None = None) -> Definitions:
    """Definitions for a settings mapping (``data/expirytrack.yaml`` when None)."""
    config = load_user_config() if config is None else config
    collection_fields = dict(config.get("collection") or {})
    if os.environ.get("EXPIRYTRACK_DATABASE"):
        collection_fields["database"] = os.environ["EXPIRYTRACK_DATABASE"]
    if os.environ.get("EXPIRYTRACK_LANDING_DIR"):
        collection_fields["landing_dir"] = os.environ["EXPIRYTRACK_LANDING_DIR"]
    collection = CollectionSettings(**collection_fields)
    return Definitions(
        assets=[expiries, contracts, candles, coverage_report],
        asset_checks=ALL_CHECKS,
        sensors=[new_expiry_sensor, coverage_report_sensor],
        jobs=[collect_expiry_job],
        resources={
            "upstox": upstox_resource_from_env(config.get("upstox")),
            "collection": collection,
            "io_manager": ExpiryTrackIOManager(database=collection.database, schema="main"),
        },
    )


defs = build_definitions()
