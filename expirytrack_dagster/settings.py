"""The ``collection:`` settings resource: what to collect, for which underlyings, where files go.

Defaults suit backtesting (1-minute candles, the 3 months before expiry through expiry day, every
CE, PE and FUT). Change them under ``collection:`` in ``data/expirytrack.yaml``; the whole
settings model (file, environment, defaults) is ``expirytrack_dagster.project_settings``.

Every setting is checked when the Dagster definitions load: an unknown key (a typo such as
``intervall:``) or a value that is not allowed raises ``SettingsError``, whose message is one line
naming the file or environment variable, the key, the value and what is allowed.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
from dagster import ConfigurableResource
from pydantic import Field, field_validator, model_validator

from expirytrack_dagster.instruments import DEFAULT_UNDERLYINGS, Underlying, pick_underlying
from expirytrack_dagster.settings_errors import (
    SettingsError,
    build_checked,
    check_keys,
    section,
    unknown_key,
)
from expirytrack_dagster.settings_file import SECTIONS
from expirytrack_dagster.storage.database import DEFAULT_DATABASE
from expirytrack_dagster.storage.lakehouse import Lakehouse, attach
from expirytrack_dagster.upstox.models import INTERVALS

__all__ = [
    "CONTRACT_TYPES",
    "LANDING_RETENTIONS",
    "SANDBOX_DIR",
    "SANDBOX_PATHS",
    "SECTIONS",
    "CollectionSettings",
    "SettingsError",
    "build_checked",
    "check_keys",
    "section",
    "unknown_key",
]

CONTRACT_TYPES = ("CE", "PE", "FUT")
LANDING_RETENTIONS = ("keep", "prune_verified")
"""``keep``: landing files stay (``expirytrack rebuild`` can restore every partition from them);
``prune_verified``: once a partition is verified complete and published, only its day records
stay (``ops.prune``) and its candles live in the database alone."""

DEFAULT_LANDING_DIR = "data/landing"

SANDBOX_DIR = "data/sandbox"
"""Where synthetic (sandbox) data goes unless its paths are set: never beside real data."""
SANDBOX_PATHS = {
    "database": f"{SANDBOX_DIR}/expirytrack.duckdb",
    "landing_dir": f"{SANDBOX_DIR}/landing",
    "state_dir": f"{SANDBOX_DIR}/state",
    "dagster_home": f"{SANDBOX_DIR}/dagster_home",
}


def _default_underlyings() -> dict[str, str]:
    return {u.symbol: u.instrument_key for u in DEFAULT_UNDERLYINGS}


class CollectionSettings(ConfigurableResource):
    """Collection settings shared by the assets, the checks and the new-expiry sensor."""

    interval: str = Field(default="1minute", description=f"One of {', '.join(INTERVALS)}.")
    lookback_months: int = Field(
        default=3, description="Candles from this many months before expiry through expiry day."
    )
    contract_types: list[str] = Field(
        default_factory=lambda: list(CONTRACT_TYPES), description="Any of CE, PE, FUT."
    )
    underlyings: dict[str, str] = Field(
        default_factory=_default_underlyings,
        description="Watched underlyings, symbol → Upstox instrument key: the seven indices "
        "plus those listed under `underlyings:` in the settings file.",
    )
    database: str = Field(default=str(DEFAULT_DATABASE), description="The DuckDB file.")
    landing_dir: str = Field(
        default=DEFAULT_LANDING_DIR,
        description="Per-contract Parquet checkpoints of fetched candles.",
    )
    compact_landing: bool = Field(
        default=True,
        description="Once every day of a partition is final, merge its landing files into one "
        "zstd file (still the raw checkpoint `expirytrack rebuild` restores the tables from).",
    )
    landing_retention: str = Field(
        default="keep",
        description="`keep` the landing files, or `prune_verified`: remove the candle files of a "
        "partition verified complete and identical in the database, keeping its day records "
        "(a re-run still asks for nothing; `expirytrack rebuild` can no longer restore it).",
    )
    max_in_flight: int = Field(
        default=8, description="Candle requests in flight at once (the limiter meters the rate)."
    )
    final_after_close_minutes: int = Field(
        default=60,
        description="The sensor treats an expiry as final this long after its session close.",
    )
    lakehouse_path: str | None = Field(
        default=None,
        description="Shared lakehouse: the folder (shared by every machine) of its Parquet "
        "files. Unset (the default): the DuckDB file alone.",
    )
    lakehouse_catalog_url: str | None = Field(
        default=None,
        description="Shared lakehouse: its PostgreSQL catalog, a libpq URL without a password "
        "(postgresql://user@host:5432/db; the password goes in PGPASSWORD or ~/.pgpass).",
    )

    @field_validator("interval")
    @classmethod
    def _known_interval(cls, value: str) -> str:
        if value not in INTERVALS:
            raise ValueError(f"must be one of {', '.join(INTERVALS)}")
        return value

    @field_validator("landing_retention")
    @classmethod
    def _known_retention(cls, value: str) -> str:
        if value not in LANDING_RETENTIONS:
            raise ValueError(f"must be one of {', '.join(LANDING_RETENTIONS)}")
        return value

    @field_validator("lookback_months", "final_after_close_minutes")
    @classmethod
    def _not_negative(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must be a whole number >= 0")
        return value

    @field_validator("max_in_flight")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be a whole number >= 1")
        return value

    @field_validator("contract_types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(CONTRACT_TYPES))
        if unknown or not value:
            raise ValueError(f"must be a non-empty list of {', '.join(CONTRACT_TYPES)}")
        return value

    @model_validator(mode="after")
    def _attach_lakehouse(self) -> CollectionSettings:
        if (self.lakehouse_path is None) != (self.lakehouse_catalog_url is None):
            raise ValueError(
                "lakehouse_path and lakehouse_catalog_url go together: set both for a shared "
                "lakehouse, or neither"
            )
        if self.lakehouse_path is not None and self.lakehouse_catalog_url is not None:
            # From now on this process reads and publishes the database through the lakehouse.
            attach(self.database, Lakehouse(Path(self.lakehouse_path), self.lakehouse_catalog_url))
        return self

    def lookback_start(self, expiry: date) -> date:
        """The first date of the candle window for ``expiry``."""
        return (pd.Timestamp(expiry) - pd.DateOffset(months=self.lookback_months)).date()

    def watched(self) -> tuple[Underlying, ...]:
        """The watched underlyings, in the order the settings list them."""
        return tuple(Underlying(symbol, key) for symbol, key in self.underlyings.items())

    def underlying(self, symbol: str) -> Underlying:
        """The watched underlying called ``symbol``; ``KeyError`` naming the choices otherwise."""
        return pick_underlying(symbol, self.watched())
