"""What to collect (interval, lookback, contract types, where files go), and settings validation.

Defaults suit backtesting (1-minute candles, the 3 months before expiry through expiry day, every
CE, PE and FUT). Change them under ``collection:`` in ``data/expirytrack.yaml``.

Every setting is checked when the Dagster definitions load: an unknown key (a typo such as
``intervall:``) or a value that is not allowed raises ``SettingsError``, whose message is one line
naming the file or environment variable, the key, the value and what is allowed.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any, TypeVar

import pandas as pd
from dagster import ConfigurableResource
from pydantic import BaseModel, Field, ValidationError, field_validator

from expirytrack_dagster.upstox.models import INTERVALS

CONTRACT_TYPES = ("CE", "PE", "FUT")


class CollectionSettings(ConfigurableResource):
    """Collection settings shared by the assets and the new-expiry sensor."""

    interval: str = Field(default="1minute", description=f"One of {', '.join(INTERVALS)}.")
    lookback_months: int = Field(
        default=3, description="Candles from this many months before expiry through expiry day."
    )
    contract_types: list[str] = Field(
        default_factory=lambda: list(CONTRACT_TYPES), description="Any of CE, PE, FUT."
    )
    database: str = Field(default="data/expirytrack.duckdb", description="The DuckDB file.")
    landing_dir: str = Field(
        default="data/landing", description="Per-contract Parquet checkpoints of fetched candles."
    )
    compact_landing: bool = Field(
        default=True,
        description="Once every day of a partition is final, merge its landing files into one "
        "zstd file (still the raw checkpoint `expirytrack rebuild` restores the tables from).",
    )
    max_in_flight: int = Field(
        default=8, description="Candle requests in flight at once (the limiter meters the rate)."
    )
    final_after_close_minutes: int = Field(
        default=60,
        description="The sensor treats an expiry as final this long after its session close.",
    )

    @field_validator("interval")
    @classmethod
    def _known_interval(cls, value: str) -> str:
        if value not in INTERVALS:
            raise ValueError(f"must be one of {', '.join(INTERVALS)}")
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

    def lookback_start(self, expiry: date) -> date:
        """The first date of the candle window for ``expiry``."""
        return (pd.Timestamp(expiry) - pd.DateOffset(months=self.lookback_months)).date()


# -- Validation ------------------------------------------------------------------------------

SECTIONS = ("underlyings", "collection", "upstox", "notifications")
"""The top-level keys of ``data/expirytrack.yaml``."""

_Model = TypeVar("_Model", bound=BaseModel)


class SettingsError(ValueError):
    """A setting is unknown or not allowed; the message is one line: where, key, value, allowed."""


def unknown_key(source: str, key: str, allowed: Iterable[str]) -> SettingsError:
    """The error for ``key`` (dotted, e.g. ``collection.intervall``), suggesting the nearest."""
    allowed = list(allowed)
    name = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(name, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return SettingsError(f"{source}: unknown key {key!r}{hint}; allowed: {', '.join(allowed)}")


def check_keys(source: str, prefix: str, given: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Raise ``SettingsError`` for the first key of ``given`` not in ``allowed``."""
    allowed = list(allowed)
    for key in given:
        if key not in allowed:
            raise unknown_key(source, f"{prefix}{key}", allowed)


def section(config: Mapping[str, Any], name: str, source: str) -> dict[str, Any]:
    """``config[name]`` as a dict (empty when absent or null); a mapping is required."""
    value = config.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SettingsError(f"{source}: {name} = {value!r}: must be a mapping of settings")
    return dict(value)


def build_checked(
    model: type[_Model],
    fields: Mapping[str, Any],
    *,
    source: str,
    prefix: str,
    sources: Mapping[str, str] | None = None,
) -> _Model:
    """``model(**fields)`` after refusing unknown keys; a refused value becomes one line.

    ``sources`` names where a field came from when not from ``source`` (an environment variable),
    so the message points at what the user must change.
    """
    allowed = [name for name in model.model_fields if not name.startswith("_")]
    check_keys(source, prefix, fields, allowed)
    try:
        return model(**fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        top = str(error["loc"][0]) if error["loc"] else ""
        where = (sources or {}).get(top)
        what = where or f"{source}: {prefix}{field}"
        ctx = error.get("ctx") or {}
        reason = str(ctx["error"]) if "error" in ctx else error["msg"]
        raise SettingsError(f"{what} = {error['input']!r}: {reason}") from None


SANDBOX_DIR = "data/sandbox"
"""Where synthetic (sandbox) data goes unless its paths are set: never beside real data."""
SANDBOX_PATHS = {
    "database": f"{SANDBOX_DIR}/expirytrack.duckdb",
    "landing_dir": f"{SANDBOX_DIR}/landing",
    "state_dir": f"{SANDBOX_DIR}/state",
    "dagster_home": f"{SANDBOX_DIR}/dagster_home",
}


def collection_settings(
    config: Mapping[str, Any], source: str, env: Mapping[str, str], data_source: str = "upstox"
) -> CollectionSettings:
    """The ``collection:`` section, with ``EXPIRYTRACK_DATABASE``/``_LANDING_DIR`` applied.

    For ``data_source="sandbox"`` the database and landing zone not set explicitly default to
    :data:`SANDBOX_PATHS`, so synthetic data never lands in the real stores.
    """
    fields = section(config, "collection", source)
    if data_source == "sandbox":
        for name in ("database", "landing_dir"):
            fields.setdefault(name, SANDBOX_PATHS[name])
    sources = {}
    for var, name in (
        ("EXPIRYTRACK_DATABASE", "database"),
        ("EXPIRYTRACK_LANDING_DIR", "landing_dir"),
    ):
        if env.get(var):
            fields[name] = env[var]
            sources[name] = var
    return build_checked(
        CollectionSettings, fields, source=source, prefix="collection.", sources=sources
    )
