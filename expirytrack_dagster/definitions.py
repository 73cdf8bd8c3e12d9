"""The one Dagster ``Definitions`` object: assets, checks, the new-expiry sensor, the job, resources.

Configuration comes from the environment and ``data/expirytrack.yaml`` (see README): runs collect
from Upstox with ``UPSTOX_ACCESS_TOKEN`` or the ``expirytrack login`` token, and fail before their
first request without one. Synthetic data only on purpose (``expirytrack demo``,
``EXPIRYTRACK_SOURCE=sandbox`` or ``upstox: {source: sandbox}``), into its own stores under
``data/sandbox/``; each database records its source and refuses the other.
Every setting is validated here, when the definitions load (``dagster definitions validate``, the
UI, the CLI): a typo or a value that is not allowed stops loading with ``SettingsError``, one line
naming the key, the value and what is allowed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from dagster import AssetSelection, Definitions, EnvVar, define_asset_job

from expirytrack_dagster.assets import candles, contracts, expiries
from expirytrack_dagster.assets.coverage import coverage_report, coverage_report_sensor
from expirytrack_dagster.checks import ALL_CHECKS
from expirytrack_dagster.instruments import config_path, load_user_config, watched_underlyings
from expirytrack_dagster.notifications import notification_sensors, notification_settings
from expirytrack_dagster.resources import SOURCES, UpstoxResource
from expirytrack_dagster.sensors import new_expiry_sensor, orphaned_run_sensor
from expirytrack_dagster.settings import (
    SANDBOX_PATHS,
    SECTIONS,
    SettingsError,
    build_checked,
    check_keys,
    collection_settings,
    section,
)
from expirytrack_dagster.storage.io_manager import ExpiryTrackIOManager
from expirytrack_dagster.upstox.limiter import RateLimits

collect_expiry_job = define_asset_job(
    name="collect_expiry",
    selection=AssetSelection.assets(expiries, contracts, candles),
    description="Collect one (underlying, expiry) partition: expiry record, contracts, candles.",
)


_ENV_FIELDS = (
    ("EXPIRYTRACK_SOURCE", "source"),
    ("EXPIRYTRACK_SANDBOX_URL", "sandbox_url"),
    ("EXPIRYTRACK_SANDBOX_TOKEN", "sandbox_token"),
    ("EXPIRYTRACK_SANDBOX_CA", "ca_cert_path"),
    ("EXPIRYTRACK_STATE_DIR", "state_dir"),
    ("EXPIRYTRACK_TIME_SCALE", "time_scale"),
)


def upstox_resource_from_env(
    settings: Mapping[str, Any] | None = None,
    *,
    source: str | None = None,
    env: Mapping[str, str] | None = None,
) -> UpstoxResource:
    """The Upstox resource as the environment and the ``upstox:`` settings describe it.

    The token is passed as ``EnvVar`` so its value never lands in run configuration or the UI.
    ``SettingsError`` names the key (or environment variable), the value and what is allowed.
    """
    env = os.environ if env is None else env
    source = source or str(config_path())
    fields: dict[str, Any] = dict(settings or {})
    origins: dict[str, str] = {}
    if env.get("UPSTOX_ACCESS_TOKEN"):
        fields["access_token"] = EnvVar("UPSTOX_ACCESS_TOKEN")
    for var, name in _ENV_FIELDS:
        if env.get(var):
            fields[name] = env[var]
            origins[name] = var
    if fields.get("source") == "sandbox":
        fields.setdefault("state_dir", SANDBOX_PATHS["state_dir"])
    resource = build_checked(
        UpstoxResource, fields, source=source, prefix="upstox.", sources=origins
    )
    where = origins.get("source", f"{source}: upstox.source")
    if resource.source not in SOURCES:
        raise SettingsError(f"{where} = {resource.source!r}: must be one of {', '.join(SOURCES)}")
    where = origins.get("time_scale", f"{source}: upstox.time_scale")
    if not (math.isfinite(resource.time_scale) and resource.time_scale > 0):
        raise SettingsError(f"{where} = {resource.time_scale!r}: must be a number > 0")
    try:
        RateLimits(
            per_second=resource.per_second,
            per_minute=resource.per_minute,
            per_30_minutes=resource.per_30_minutes,
            time_scale=resource.time_scale,
            safety_margin=resource.safety_margin,
            latency_allowance_s=resource.latency_allowance_s,
        )
    except ValueError as exc:
        # "RateLimits.per_second must be a positive int, got 0" -> the user's key and value.
        name, _, rest = str(exc).removeprefix("RateLimits.").partition(" must ")
        what, _, value = rest.rpartition(", got ")
        raise SettingsError(f"{source}: upstox.{name} = {value}: must {what}") from None
    return resource


def build_definitions(config: dict[str, Any] | None = None) -> Definitions:
    """Definitions for a settings mapping (``data/expirytrack.yaml`` when None)."""
    source = str(config_path())
    config = load_user_config() if config is None else config
    check_keys(source, "", config, SECTIONS)
    watched_underlyings(config)  # refuses bad entries now rather than in the first run
    upstox = upstox_resource_from_env(section(config, "upstox", source), source=source)
    data_source = upstox.resolved_source()
    collection = collection_settings(config, source, os.environ, data_source)
    notifications = notification_settings(config, source)
    return Definitions(
        assets=[expiries, contracts, candles, coverage_report],
        asset_checks=ALL_CHECKS,
        sensors=[
            new_expiry_sensor,
            orphaned_run_sensor,
            coverage_report_sensor,
            *notification_sensors(notifications, upstox),
        ],
        jobs=[collect_expiry_job],
        resources={
            "upstox": upstox,
            "collection": collection,
            "io_manager": ExpiryTrackIOManager(
                database=collection.database,
                schema="main",
                source=data_source,
                landing_dir=collection.landing_dir,
            ),
        },
    )


defs = build_definitions()
