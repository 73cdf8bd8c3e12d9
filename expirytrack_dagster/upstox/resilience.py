"""Retry timing (exponential backoff with full jitter) and the circuit breaker for Upstox calls."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from expirytrack_dagster.upstox.errors import CircuitOpen


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failed request is tried again.

    Retried: 429, 5xx, timeouts, dropped connections and unreadable bodies. Never retried: 401 and
    other 4xx input errors, which fail at once with the API's own message.
    """

    max_attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    rate_limit_pause_s: float = 5.0
    circuit_failures: int = 8
    circuit_min_failing_s: float = 10.0
    circuit_cooldown_s: float = 60.0

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before retry number ``attempt`` (1-based): uniform in [0, min(cap, base·2^(n-1))]."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return (rng or random).uniform(0.0, ceiling)


class CircuitBreaker:
    """Stops calling a failing API: refuse for ``cooldown_s`` once it has failed for a while.

    The circuit opens after ``threshold`` consecutive failures that also span at least
    ``min_failing_s``. The time condition matters with concurrent requests: when a server rotates
    its HTTP/2 connection, every stream in flight fails at the same instant, which is one event,
    not an outage. After the cool-down one request is let through; its success closes the
    circuit, its failure opens it again.
    """

    def __init__(self, threshold: int, cooldown_s: float, min_failing_s: float = 0.0) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.min_failing_s = min_failing_s
        self.consecutive_failures = 0
        self.failing_since: float | None = None
        self.opened_at: float | None = None

    def before_request(self) -> None:
        if self.opened_at is None:
            return
        remaining = self.opened_at + self.cooldown_s - time.monotonic()
        if remaining > 0:
            raise CircuitOpen(
                f"{self.consecutive_failures} consecutive failures; not calling Upstox for "
                f"another {remaining:.0f}s"
            )
        self.opened_at = None  # half-open: this request is the trial

    def record_success(self) -> None:
        self.consecutive_failures = 0
        self.failing_since = None
        self.opened_at = None

    def record_failure(self) -> None:
        now = time.monotonic()
        self.consecutive_failures += 1
        if self.failing_since is None:
            self.failing_since = now
        if (
            self.consecutive_failures >= self.threshold
            and now - self.failing_since >= self.min_failing_s
        ):
            self.opened_at = now
