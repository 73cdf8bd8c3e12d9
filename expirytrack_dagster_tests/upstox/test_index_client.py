"""``UpstoxClient.get_index_candles`` (V3, an underlying's own candles) against the sandbox on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from expirytrack_dagster.calendar import trading_days_between
from expirytrack_dagster.sandbox import FaultConfig, Sandbox, SandboxConfig, run_sandbox
from expirytrack_dagster.upstox.client import ClientSettings, UpstoxClient
from expirytrack_dagster.upstox.errors import (
    InvalidDateRange,
    InvalidRequest,
    MalformedResponse,
    RateLimited,
)
from expirytrack_dagster.upstox.limiter import RateLimits
from expirytrack_dagster.upstox.models import INDEX_CANDLE_COLUMNS, parse_index_candles
from expirytrack_dagster.upstox.resilience import RetryPolicy

TODAY = date(2025, 10, 1)
NIFTY = "NSE_INDEX|Nifty 50"
RELIANCE = "NSE_EQ|INE002A01018"
FAST_RETRY = RetryPolicy(
    max_attempts=2, base_delay_s=0.01, max_delay_s=0.05, rate_limit_pause_s=0.05
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with run_sandbox(SandboxConfig(seed=11, today=TODAY)) as sb:
        yield sb


def _settings(sb: Sandbox, state_dir: Path, **limits: object) -> ClientSettings:
    return ClientSettings(
        ca_cert_path=sb.ca_cert_path,
        retry=FAST_RETRY,
        state_dir=state_dir,
        timeout_s=5.0,
        limits=RateLimits(**limits) if limits else RateLimits(),
    )


def _fetch(sb: Sandbox, settings: ClientSettings, key: str, start: date, end: date):
    async def go() -> tuple[pd.DataFrame, UpstoxClient]:
        async with UpstoxClient(sb.base_url, sb.access_token, settings) as client:
            return await client.get_index_candles(key, start, end), client

    return asyncio.run(go())


@pytest.mark.parametrize("key", [NIFTY, RELIANCE])
def test_one_request_returns_the_truth_ascending(
    sandbox: Sandbox, tmp_path: Path, key: str
) -> None:
    start, end = date(2025, 8, 1), date(2025, 8, 28)
    frame, client = _fetch(sandbox, _settings(sandbox, tmp_path), key, start, end)
    truth = sandbox.market.truth_index_candles(key, start, end)
    assert list(frame.columns) == list(INDEX_CANDLE_COLUMNS)
    pd.testing.assert_frame_equal(frame, truth.drop(columns="underlying_key"))
    assert len(frame) == 18 * 375  # 18 sessions in 1–28 August 2025 (15 and 27 are holidays)
    assert len(trading_days_between(start, end)) == 18
    assert (frame["volume"] == 0).all() == (key == NIFTY)
    assert client.stats.requests == {"index_candles": 1}
    windows = client.limiter.snapshot()["windows"]
    assert [w["count"] for w in windows] == [1, 1, 1]  # through the shared rate ledger


def test_a_range_longer_than_a_month_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    with pytest.raises(InvalidDateRange, match="Invalid date range"):
        _fetch(sandbox, _settings(sandbox, tmp_path), NIFTY, date(2025, 7, 1), date(2025, 8, 1))
    with pytest.raises(InvalidRequest, match="after"):
        _fetch(sandbox, _settings(sandbox, tmp_path), NIFTY, date(2025, 8, 2), date(2025, 8, 1))


def test_the_shared_limiter_paces_index_requests(tmp_path: Path) -> None:
    config = SandboxConfig(seed=11, today=TODAY, per_second=1, per_minute=None, per_30_minutes=None)
    with run_sandbox(config) as sb:
        settings = _settings(
            sb, tmp_path, per_second=1, per_minute=500, per_30_minutes=2000, time_scale=1.0
        )

        async def two() -> UpstoxClient:
            async with UpstoxClient(sb.base_url, sb.access_token, settings) as client:
                day = date(2025, 8, 1)
                await asyncio.gather(*(client.get_index_candles(NIFTY, day, day) for _ in "ab"))
                return client

        client = asyncio.run(two())
        assert client.stats.requests == {"index_candles": 2}
        assert client.stats.rate_limited == 0  # the limiter waited instead of drawing a 429
        assert sb.stats()["by_status"] == {200: 2}


def test_a_persistent_429_is_raised_as_rate_limited(tmp_path: Path) -> None:
    config = SandboxConfig(
        seed=11, today=TODAY, per_second=1, per_minute=None, per_30_minutes=None, time_scale=1000
    )
    with run_sandbox(config) as sb:
        day = date(2025, 8, 1)
        _fetch(sb, _settings(sb, tmp_path), NIFTY, day, day)
        with pytest.raises(RateLimited):
            _fetch(sb, _settings(sb, tmp_path / "other"), NIFTY, day, day)


def test_rows_without_open_interest_are_accepted_and_bad_rows_refused() -> None:
    rows = [
        ["2025-08-01T09:16:00+05:30", 2.0, 3.0, 1.0, 2.5, 0],
        ["2025-08-01T09:15:00+05:30", 1.0, 2.0, 0.5, 1.5, 0, 0],
    ]
    frame = parse_index_candles({"candles": rows})
    assert list(frame.columns) == list(INDEX_CANDLE_COLUMNS)
    assert frame["close"].tolist() == [1.5, 2.5]  # ascending
    assert parse_index_candles({"candles": []}).empty
    with pytest.raises(MalformedResponse, match="7 values"):
        parse_index_candles({"candles": [["2025-08-01T09:15:00+05:30", 1.0, 2.0]]})


@pytest.mark.parametrize("fault", ["server_error", "malformed", "drop"])
def test_a_transient_fault_on_v3_is_retried(sandbox: Sandbox, tmp_path: Path, fault: str) -> None:
    sandbox.set_faults(FaultConfig(**{fault: 1.0}, max_count=1, only_paths=("/v3/",)))
    try:
        day = date(2025, 8, 1)
        frame, client = _fetch(sandbox, _settings(sandbox, tmp_path), NIFTY, day, day)
    finally:
        sandbox.set_faults(FaultConfig())
    assert len(frame) == 375
    assert client.stats.retries == 1 and client.stats.requests == {"index_candles": 2}
