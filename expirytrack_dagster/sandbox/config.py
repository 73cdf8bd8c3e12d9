"""The sandbox's settings: market seed and clock, rate limits, per-interval spans, faults, port."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.sandbox.candles import INTERVAL_MINUTES
from expirytrack_dagster.sandbox.faults import FaultConfig
from expirytrack_dagster.sandbox.login import DEMO_APP, SandboxApp
from expirytrack_dagster.sandbox.profiles import UnderlyingProfile

DEFAULT_MAX_SPAN_DAYS: Mapping[str, int] = {
    "1minute": 31,
    "3minute": 31,
    "5minute": 31,
    "15minute": 31,
    "30minute": 366,
    "day": 366,
}
"""Longest request per interval, in days counting both ends (Upstox does not document it)."""

RangeBehaviour = Literal["error", "truncate"]


def ist_today() -> date:
    """Today's date in India."""
    return datetime.now(IST).date()


@dataclass(frozen=True)
class SandboxConfig:
    """Everything a sandbox run is made of; every field has a default.

    ``today`` is the market's clock: expiries up to it are listed (``history_days`` back) and
    no candle lies after it. ``per_*`` are the per-token rate windows (None disables one) and
    ``time_scale`` multiplies their lengths (0.01 makes the 30-minute window 18 s).
    ``max_span_days`` overrides the span limit of some intervals; a longer request gets
    ``UDAPI1148`` with ``range_behaviour="error"`` or only its last days with ``"truncate"``.
    ``extra_profiles`` adds underlyings (or replaces a default with the same symbol).
    ``port`` 0 picks a free port. ``access_token`` None makes a random one.
    ``apps`` are the developer apps the login endpoints accept (``DEMO_APP`` by default).
    ``requests_per_connection``: the server closes an HTTP/2 connection after this many requests
    (GOAWAY), as production servers rotate connections; clients must carry on over a new one.
    """

    seed: int = 7
    today: date = field(default_factory=ist_today)
    history_days: int = 365
    per_second: int | None = 50
    per_minute: int | None = 500
    per_30_minutes: int | None = 2000
    time_scale: float = 1.0
    max_span_days: Mapping[str, int] = field(default_factory=dict)
    range_behaviour: RangeBehaviour = "error"
    faults: FaultConfig = field(default_factory=FaultConfig)
    extra_profiles: tuple[UnderlyingProfile, ...] = ()
    port: int = 0
    access_token: str | None = None
    apps: tuple[SandboxApp, ...] = (DEMO_APP,)
    requests_per_connection: int = 1000

    def __post_init__(self) -> None:
        if self.range_behaviour not in ("error", "truncate"):
            raise ValueError(
                f"range_behaviour must be 'error' or 'truncate', not {self.range_behaviour!r}"
            )
        unknown = set(self.max_span_days) - set(INTERVAL_MINUTES)
        if unknown:
            raise ValueError(f"max_span_days has unknown intervals: {', '.join(sorted(unknown))}")
        if any(days < 1 for days in self.max_span_days.values()):
            raise ValueError("max_span_days values must be at least 1")
        if self.time_scale <= 0:
            raise ValueError("time_scale must be positive")
        if not 0 <= self.port < 65536:
            raise ValueError(f"port {self.port} is out of range")
        object.__setattr__(self, "max_span_days", {**DEFAULT_MAX_SPAN_DAYS, **self.max_span_days})
        object.__setattr__(self, "extra_profiles", tuple(self.extra_profiles))
        object.__setattr__(self, "apps", tuple(self.apps))

    def span_limit(self, interval: str) -> int:
        """The longest request for ``interval``, in days counting both ends."""
        return self.max_span_days[interval]
