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
    circuit_cooldown_s: float = 60.0

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before retry number ``attempt`` (1-based): uniform in [0, min(cap, base·2^(n-1))]."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return (rng or random).uniform(0.0, ceiling)


class CircuitBreaker:
    """Stops calling a failing API: after ``threshold`` consecutive failures, refuse for ``cooldown_s``.

    After the cool-down one request is let through; its success closes the circuit, its failure
    opens it again.
    """

    def __init__(self, threshold: int, cooldown_s: float) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.consecutive_failures = 0
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
        self.opened_at = None

    def record_failure(self) -> None:
        self.consecutive_failures += 1
        if self.consecutive_failures >= self.threshold:
            self.opened_at = time.monotonic()
