"""The live state one sandbox serves from: market, tokens, rate windows, span limits, faults, stats."""

from __future__ import annotations

import threading

from expirytrack_dagster.sandbox.config import SandboxConfig
from expirytrack_dagster.sandbox.faults import FaultConfig, FaultInjector
from expirytrack_dagster.sandbox.limits import SlidingWindowLimiter, upstox_windows
from expirytrack_dagster.sandbox.live import LiveClock, LiveMarket
from expirytrack_dagster.sandbox.login import SandboxLogin
from expirytrack_dagster.sandbox.market import SyntheticMarket
from expirytrack_dagster.sandbox.profiles import build_book
from expirytrack_dagster.sandbox.ranges import RangePolicy, SpanLimits
from expirytrack_dagster.sandbox.stats import RequestStats
from expirytrack_dagster.sandbox.tokens import TokenRegistry


class SandboxState:
    """Shared by the server thread and the controlling thread; each part guards itself."""

    def __init__(self, config: SandboxConfig):
        self.config = config
        self.market = SyntheticMarket(
            build_book(config.extra_profiles),
            seed=config.seed,
            today=config.today,
            history_days=config.history_days,
        )
        self.tokens = TokenRegistry()
        self.login = SandboxLogin(self.tokens, config.apps)
        self.limiter = SlidingWindowLimiter(
            upstox_windows(
                config.per_second, config.per_minute, config.per_30_minutes, config.time_scale
            )
        )
        self.faults = FaultInjector(config.faults)
        self.ranges: RangePolicy = config.range_policy
        self._ranges_lock = threading.Lock()
        self.stats = RequestStats()
        self.live = LiveMarket(self.market, LiveClock())  # the live endpoints' "now"

    def set_faults(self, faults: FaultConfig) -> None:
        """Switch faults; the new config's random stream and ``max_count`` start afresh."""
        self.faults = FaultInjector(faults)  # one reference swap: requests see old or new, whole

    def set_range(
        self, max_span_days: SpanLimits | None = None, behaviour: str | None = None
    ) -> RangePolicy:
        """Change some span limits and/or the range behaviour; returns the policy now in force."""
        with self._ranges_lock:  # read-modify-write: two callers must not lose each other's change
            self.ranges = self.ranges.changed(max_span_days, behaviour)  # one reference swap
            return self.ranges
