"""Backoff timing and the circuit breaker."""

from __future__ import annotations

import random
import time

import pytest

from expirytrack_dagster.upstox.errors import CircuitOpen
from expirytrack_dagster.upstox.resilience import CircuitBreaker, RetryPolicy


def test_backoff_is_jittered_and_capped() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=5.0)
    rng = random.Random(1)
    delays = [policy.backoff(attempt, rng) for attempt in range(1, 12) for _ in range(50)]
    assert all(0.0 <= d <= 5.0 for d in delays)
    assert max(policy.backoff(1, rng) for _ in range(200)) <= 1.0
    assert len({round(d, 6) for d in delays}) > 100  # jitter, not a fixed schedule


def test_circuit_opens_after_threshold_and_half_opens() -> None:
    breaker = CircuitBreaker(threshold=3, cooldown_s=0.05, min_failing_s=0.0)
    for _ in range(3):
        breaker.before_request()
        breaker.record_failure()
    with pytest.raises(CircuitOpen, match="3 consecutive failures"):
        breaker.before_request()
    time.sleep(0.06)
    breaker.before_request()  # the trial request
    breaker.record_success()
    breaker.before_request()
    assert breaker.consecutive_failures == 0


def test_a_burst_of_simultaneous_failures_is_one_event_not_an_outage() -> None:
    breaker = CircuitBreaker(threshold=3, cooldown_s=60, min_failing_s=0.2)
    for _ in range(16):  # every stream of a rotated connection fails at once
        breaker.record_failure()
    breaker.before_request()  # still closed: the failures spanned no time
    time.sleep(0.25)
    breaker.record_failure()  # still failing 0.25 s later: now it is an outage
    with pytest.raises(CircuitOpen):
        breaker.before_request()
