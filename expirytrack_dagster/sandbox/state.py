"""The live state one sandbox serves from: market, accepted tokens, rate windows, faults, stats."""

from __future__ import annotations

from expirytrack_dagster.sandbox.config import SandboxConfig
from expirytrack_dagster.sandbox.faults import FaultConfig, FaultInjector
from expirytrack_dagster.sandbox.limits import SlidingWindowLimiter, upstox_windows
from expirytrack_dagster.sandbox.login import SandboxLogin
from expirytrack_dagster.sandbox.market import SyntheticMarket
from expirytrack_dagster.sandbox.profiles import build_book
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
        self.stats = RequestStats()

    def set_faults(self, faults: FaultConfig) -> None:
        """Switch faults; the new config's random stream and ``max_count`` start afresh."""
        self.faults = FaultInjector(faults)  # one reference swap: requests see old or new, whole
