"""One partition as the rules read it: its frames, scope and settings, the day grid built once."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import cached_property

import pandas as pd

from expirytrack_dagster.quality.contract_days import day_status
from expirytrack_dagster.quality.settings import PartitionScope, QualitySettings


@dataclass(frozen=True, eq=False)  # eq=False: comparing DataFrames field-wise is ambiguous
class PartitionData:
    """What the quality rules read for one (underlying, expiry) partition.

    A rule function's parameters name what it reads, each an attribute here (see
    registry.py). ``candles`` and ``fetch_status`` may be left out when only the contract
    rules run: those read the contract list alone, before any candle is fetched.
    """

    scope: PartitionScope
    contracts: pd.DataFrame
    candles: pd.DataFrame | None = None
    fetch_status: pd.DataFrame | None = None
    settings: QualitySettings = field(default_factory=QualitySettings)

    @cached_property
    def days(self) -> pd.DataFrame:
        """The per-(contract, trading day) grid of contract_days.py, built on first use."""
        if self.candles is None or self.fetch_status is None:
            raise ValueError("the day grid needs the partition's candles and fetch outcomes")
        return day_status(
            self.candles, self.contracts, self.fetch_status, self.scope, self.settings
        )

    @property
    def interval(self) -> int | str:
        """The candle width the partition was collected at (``scope.interval``)."""
        return self.scope.interval


READABLE: frozenset[str] = frozenset(f.name for f in fields(PartitionData)) | {
    name
    for name, member in vars(PartitionData).items()
    if isinstance(member, property | cached_property)
}
"""What a rule function may read: the names its parameters may take."""
