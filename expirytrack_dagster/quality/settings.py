"""What the quality rules are told: the tunable settings, and the scope of the partition checked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

MINUTE_INTERVALS: tuple[int, ...] = (1, 3, 5, 15, 30)
"""Candle widths in minutes that the expired-instruments API serves (besides ``"day"``)."""


@dataclass(frozen=True)
class QualitySettings:
    """Thresholds and report sizes shared by every rule.

    ``near_money_band`` switches the near-money definition from a strike count to a price band:
    when set (a fraction, 0.02 = ±2 % of the reference price) it replaces ``near_money_strikes``.
    ``future_front_month_days``: calendar days before expiry during which a future below the
    coverage threshold is an ERROR. Earlier, the contract is the next or far month, thinly traded,
    so its gaps are reported but do not fail the rule. 28 days always falls after the previous
    monthly expiry (the last Tuesday or Thursday of the previous month is 28-35 days earlier).
    ``None`` makes every day of the window strict.
    """

    coverage_threshold: float = 0.99
    near_money_strikes: int = 5
    near_money_band: float | None = None
    near_money_peer_fraction: float = 0.5
    near_money_liquid_median: float = 0.9
    future_front_month_days: int | None = 28
    coverage_histogram_edges: tuple[float, ...] = (0.10, 0.25, 0.50, 0.75, 0.90)
    sample_rows: int = 5
    worst_contracts: int = 10

    def __post_init__(self) -> None:
        if not 0.0 < self.coverage_threshold <= 1.0:
            raise ValueError(f"coverage_threshold must be in (0, 1], got {self.coverage_threshold}")
        if self.near_money_strikes < 0:
            raise ValueError(f"near_money_strikes must be >= 0, got {self.near_money_strikes}")
        if not 0.0 < self.near_money_peer_fraction <= 1.0:
            raise ValueError("near_money_peer_fraction must be in (0, 1]")
        if not 0.0 <= self.near_money_liquid_median <= 1.0:
            raise ValueError("near_money_liquid_median must be in [0, 1]")
        if self.near_money_band is not None and self.near_money_band <= 0:
            raise ValueError(f"near_money_band must be > 0, got {self.near_money_band}")
        if list(self.coverage_histogram_edges) != sorted(set(self.coverage_histogram_edges)):
            raise ValueError("coverage_histogram_edges must be strictly increasing")


@dataclass(frozen=True)
class PartitionScope:
    """One (underlying, expiry) partition as the rules see it.

    ``window_start``/``window_end`` are the lookback window's first and last dates (inclusive);
    ``interval`` is the candle width in minutes (1, 3, 5, 15, 30) or ``"day"``; Upstox's own
    names (``"5minute"``) are accepted too.
    """

    expiry: date
    monthly: bool
    window_start: date
    window_end: date
    interval: int | str = 1

    def __post_init__(self) -> None:
        if self.window_start > self.window_end:
            raise ValueError(f"window_start {self.window_start} is after {self.window_end}")
        interval_minutes(self.interval)  # fail at construction, not deep inside a rule

    @property
    def last_day(self) -> date:
        """The window's last date that can hold candles: nothing trades after expiry."""
        return min(self.window_end, self.expiry)


def interval_minutes(interval: int | str) -> int | None:
    """Minutes per candle for ``interval``, or None for daily candles."""
    if isinstance(interval, str):
        name = interval.strip().lower()
        if name == "day":
            return None
        if name.endswith("minute") and name.removesuffix("minute").isdigit():
            interval = int(name.removesuffix("minute"))
    if (
        isinstance(interval, int)
        and not isinstance(interval, bool)
        and interval in MINUTE_INTERVALS
    ):
        return interval
    raise ValueError(f"unsupported candle interval {interval!r}: use 1, 3, 5, 15, 30 or 'day'")
