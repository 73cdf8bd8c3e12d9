"""What to collect: interval, lookback, contract types, and where files go — one resource.

Defaults suit backtesting (1-minute candles, the 3 months before expiry through expiry day, every
CE, PE and FUT). Change them under ``collection:`` in ``data/expirytrack.yaml``.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from dagster import ConfigurableResource
from pydantic import Field, field_validator

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
            raise ValueError(f"interval {value!r} is not one of {', '.join(INTERVALS)}")
        return value

    @field_validator("contract_types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(CONTRACT_TYPES))
        if unknown or not value:
            raise ValueError(f"contract_types must be a non-empty subset of {CONTRACT_TYPES}")
        return value

    def lookback_start(self, expiry: date) -> date:
        """The first date of the candle window for ``expiry``."""
        return (pd.Timestamp(expiry) - pd.DateOffset(months=self.lookback_months)).date()
