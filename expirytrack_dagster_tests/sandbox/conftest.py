"""Sandbox test fixtures: one shared sandbox for read-only tests, fresh ones for tests that mutate."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from datetime import date
from typing import Any

import httpx
import pytest

from expirytrack_dagster.sandbox import Sandbox, SandboxConfig, generic_profile, run_sandbox

TODAY = date(2025, 9, 20)
"""The shared sandbox's market date: the recorded samples' expiries lie in its window."""
NIFTY = "NSE_INDEX|Nifty 50"
BASE = "/v2/expired-instruments"
BASE_CONFIG = SandboxConfig(seed=7, today=TODAY)
TINY = generic_profile(
    "TINY", "NSE_INDEX|Tiny Index", max_strikes=3, liquidity=0.5, monthly_life_days=30
)
"""A small extra underlying: 23 contracts of one month (~150k candles) for whole-expiry tests."""
TINY_EXPIRY = date(2025, 8, 28)


def http_client(sb: Sandbox, http2: bool = True, **kwargs: Any) -> httpx.Client:
    """A client that trusts ``sb``'s CA and sends its token, as a real Upstox client would."""
    return httpx.Client(
        http2=http2,
        verify=sb.ssl_context(),
        base_url=sb.base_url,
        headers=sb.headers,
        timeout=kwargs.pop("timeout", 10.0),
        **kwargs,
    )


def candle_path(key: str, interval: str, to_date: date | str, from_date: date | str) -> str:
    return f"{BASE}/historical-candle/{key.replace('|', '%7C')}/{interval}/{to_date}/{from_date}"


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """The shared sandbox: tests must not change its faults, clock or tokens."""
    with run_sandbox(BASE_CONFIG) as sb:
        yield sb


@pytest.fixture(scope="session")
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with http_client(sandbox) as c:
        yield c


@pytest.fixture
def fresh_sandbox() -> Callable[..., AbstractContextManager[Sandbox]]:
    """Start a private sandbox: ``with fresh_sandbox(per_second=5) as sb: ...``."""

    @contextmanager
    def start(**overrides: Any) -> Iterator[Sandbox]:
        with run_sandbox(replace(BASE_CONFIG, **overrides)) as sb:
            yield sb

    return start


def monthly_and_weekly(sb: Sandbox, symbol: str = "NIFTY") -> tuple[date, date]:
    """The August 2025 monthly expiry of ``symbol`` and a weekly one from the same month."""
    august = [d for d in sb.market.expiries(symbol) if (d.year, d.month) == (2025, 8)]
    monthly = [d for d in august if sb.market.is_monthly(symbol, d)]
    weekly = [d for d in august if not sb.market.is_monthly(symbol, d)]
    return monthly[0], weekly[0]
