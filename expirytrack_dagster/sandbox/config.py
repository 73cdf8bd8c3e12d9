"""The sandbox's settings: market seed and clock, rate limits, per-interval spans, faults, port."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.sandbox.faults import FaultConfig
from expirytrack_dagster.sandbox.login import DEMO_APP, SandboxApp
from expirytrack_dagster.sandbox.profiles import UnderlyingProfile
from expirytrack_dagster.sandbox.ranges import DEFAULT_MAX_SPAN_DAYS, RangePolicy

__all__ = ["DEFAULT_MAX_SPAN_DAYS", "SandboxConfig", "ist_today"]


def ist_today() -> date:
    """Today's date in India."""
    return datetime.now(IST).date()


@dataclass(frozen=True)
class SandboxConfig:
    """Everything a sandbox run is made of; every field has a default.

    ``today`` is the market's clock: expiries up to it are listed (``history_days`` back) and
    no candle lies after it. ``per_*`` are the per-token rate windows (None disables one) and
    ``time_scale`` multiplies their lengths (0.01 makes the 30-minute window 18 s).
    ``max_span_days`` overrides the span limit (days, both ends counted) of some intervals, or
    of every intraday interval (1/3/5/15minute) when it is one number; ``3650`` lets any window
    through. A longer request gets, by ``range_behaviour`` (see ``sandbox.ranges``): ``"error"``
    400 ``UDAPI1148``; ``"keep_recent"`` (alias ``"truncate"``) only its last days;
    ``"keep_earliest"`` only its first days. ``Sandbox.set_range`` changes both while running.
    After construction ``max_span_days`` holds every interval and ``range_behaviour`` the
    canonical name.
    ``extra_profiles`` adds underlyings (or replaces a default with the same symbol).
    ``port`` 0 picks a free port. ``access_token`` None makes a random one.
    ``extra_tokens`` are further accepted tokens, one per simulated Upstox account: the rate
    windows are per token, so each has its own budget (as several Upstox accounts do).
    ``plus_plan`` False makes ``access_token`` a token without the Upstox Plus plan: every
    expired-instruments request then answers ``UDAPI1149``.
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
    max_span_days: Mapping[str, int] | int = field(default_factory=dict)
    range_behaviour: str = "error"
    faults: FaultConfig = field(default_factory=FaultConfig)
    extra_profiles: tuple[UnderlyingProfile, ...] = ()
    port: int = 0
    access_token: str | None = None
    extra_tokens: tuple[str, ...] = ()
    plus_plan: bool = True
    apps: tuple[SandboxApp, ...] = (DEMO_APP,)
    requests_per_connection: int = 1000

    def __post_init__(self) -> None:
        policy = RangePolicy.of(self.max_span_days, self.range_behaviour)
        if self.time_scale <= 0:
            raise ValueError("time_scale must be positive")
        if not 0 <= self.port < 65536:
            raise ValueError(f"port {self.port} is out of range")
        object.__setattr__(self, "max_span_days", dict(policy.max_span_days))
        object.__setattr__(self, "range_behaviour", policy.behaviour)
        object.__setattr__(self, "extra_profiles", tuple(self.extra_profiles))
        object.__setattr__(self, "apps", tuple(self.apps))
        object.__setattr__(self, "extra_tokens", tuple(self.extra_tokens))
        if any(not token for token in self.extra_tokens):
            raise ValueError("extra_tokens must be non-empty strings")

    @property
    def range_policy(self) -> RangePolicy:
        """The span limits and range behaviour the sandbox starts with."""
        return RangePolicy.of(self.max_span_days, self.range_behaviour)

    def span_limit(self, interval: str) -> int:
        """The longest request for ``interval`` at start, in days counting both ends."""
        return self.range_policy.span_limit(interval)
