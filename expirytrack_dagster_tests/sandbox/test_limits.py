"""Per-token sliding-window rate limits: the limiter itself, then 429s over HTTP with time_scale."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import httpx

from expirytrack_dagster.sandbox import Sandbox
from expirytrack_dagster.sandbox.limits import SlidingWindowLimiter, Window, upstox_windows
from expirytrack_dagster_tests.sandbox.conftest import BASE, NIFTY, http_client


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_upstox_windows_scale() -> None:
    assert upstox_windows() == (Window(50, 1.0), Window(500, 60.0), Window(2000, 1800.0))
    assert upstox_windows(time_scale=0.01)[-1] == Window(2000, 18.0)
    assert upstox_windows(per_minute=None) == (Window(50, 1.0), Window(2000, 1800.0))


def test_every_window_binds_and_rejections_do_not_count() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter([Window(3, 1.0), Window(5, 60.0)], clock=clock)
    assert [limiter.try_acquire("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.try_acquire("b")  # windows are per token
    for _ in range(50):  # hammering while refused does not extend the wait
        assert not limiter.try_acquire("a")
    clock.now += 1.01
    assert [limiter.try_acquire("a") for _ in range(3)] == [True, True, False]  # the minute: 5
    clock.now += 58.0
    assert not limiter.try_acquire("a")
    clock.now += 1.0  # the first three leave the minute window
    assert [limiter.try_acquire("a") for _ in range(4)] == [True, True, True, False]


def _expiries(c: httpx.Client, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return c.get(f"{BASE}/expiries", params={"instrument_key": NIFTY}, headers=headers).status_code


def test_sixth_request_in_a_second_is_429(
    fresh_sandbox: Callable[..., AbstractContextManager[Sandbox]],
) -> None:
    with fresh_sandbox(per_second=5) as sb, http_client(sb) as c:
        sb.add_token("second-user")
        statuses = [_expiries(c) for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        response = c.get(f"{BASE}/expiries", params={"instrument_key": NIFTY})
        body = response.json()
        assert body["errors"][0]["errorCode"] == "UDAPI10005"
        assert body["errors"][0]["message"] == "Too Many Request Sent"
        assert _expiries(c, "second-user") == 200  # another token has its own windows
        time.sleep(1.05)
        assert _expiries(c) == 200
        stats = sb.stats()
    assert stats["rate_limited"] == 2 and stats["by_status"][429] == 2


def test_thirty_minute_window_with_time_scale(
    fresh_sandbox: Callable[..., AbstractContextManager[Sandbox]],
) -> None:
    # 30 minutes x 0.0006 = 1.08 s; only the long window is active.
    config = {"per_second": None, "per_minute": None, "per_30_minutes": 4, "time_scale": 0.0006}
    with fresh_sandbox(**config) as sb, http_client(sb) as c:
        started = time.monotonic()
        assert [_expiries(c) for _ in range(5)] == [200, 200, 200, 200, 429]
        time.sleep(max(0.0, 1.15 - (time.monotonic() - started)))
        assert _expiries(c) == 200
