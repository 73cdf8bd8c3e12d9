"""The Upstox client against the sandbox over real HTTP/2 on loopback: endpoints, errors, retries.

Nothing here is mocked: each test talks TLS + HTTP/2 to a sandbox server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest

from expirytrack_dagster.sandbox import FaultConfig, Sandbox, SandboxConfig, run_sandbox
from expirytrack_dagster.upstox.client import ClientSettings, UpstoxClient, ledger_path
from expirytrack_dagster.upstox.errors import (
    CircuitOpen,
    InvalidDateRange,
    InvalidRequest,
    MalformedResponse,
    RateLimited,
    TokenExpired,
    UpstoxUnavailable,
)
from expirytrack_dagster.upstox.limiter import RateLimits
from expirytrack_dagster.upstox.resilience import RetryPolicy

TODAY = date(2025, 10, 1)
NIFTY = "NSE_INDEX|Nifty 50"
FAST_RETRY = RetryPolicy(
    max_attempts=4, base_delay_s=0.01, max_delay_s=0.05, rate_limit_pause_s=0.05
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with run_sandbox(SandboxConfig(seed=11, today=TODAY)) as sb:
        yield sb


def settings_for(sb: Sandbox, state_dir: Path, **overrides: object) -> ClientSettings:
    base = ClientSettings(
        ca_cert_path=sb.ca_cert_path, retry=FAST_RETRY, state_dir=state_dir, timeout_s=5.0
    )
    return replace(base, **overrides)


def run(coro):
    return asyncio.run(coro)


async def _with_client(sb: Sandbox, settings: ClientSettings, fn, token: str | None = None):
    async with UpstoxClient(sb.base_url, token or sb.access_token, settings) as client:
        result = await fn(client)
        return result, client


def _monthly_and_weekly(sb: Sandbox) -> tuple[date, date]:
    expiries = sb.market.expiries(NIFTY)
    by_month: dict[tuple[int, int], list[date]] = {}
    for d in expiries:
        by_month.setdefault((d.year, d.month), []).append(d)
    monthly = max(by_month[(2025, 8)])
    weekly = min(by_month[(2025, 8)])
    assert weekly != monthly
    return monthly, weekly


def test_expiries_contracts_and_candles_end_to_end(sandbox: Sandbox, state_dir: Path) -> None:
    monthly, weekly = _monthly_and_weekly(sandbox)

    async def scenario(client: UpstoxClient):
        expiries = await client.get_expiries(NIFTY)
        options = await client.get_option_contracts(NIFTY, monthly)
        futures = await client.get_future_contracts(NIFTY, monthly)
        weekly_futures = await client.get_future_contracts(NIFTY, weekly)
        (future,) = futures
        candles = await client.get_candles(
            future.expired_instrument_key, "1minute", monthly - timedelta(days=6), monthly
        )
        return expiries, options, futures, weekly_futures, candles

    (expiries, options, futures, weekly_futures, candles), client = run(
        _with_client(sandbox, settings_for(sandbox, state_dir), scenario)
    )
    assert expiries == sorted(expiries) and expiries[-1] <= TODAY
    assert expiries == sandbox.market.expiries(NIFTY)
    assert 100 <= len(options) <= 220
    assert {c.instrument_type for c in options} == {"CE", "PE"}
    assert all(c.expiry == monthly for c in options + futures)
    assert weekly_futures == []  # a weekly expiry has no future: empty, not an error
    assert candles["timestamp"].is_monotonic_increasing
    assert str(candles["timestamp"].dt.tz) == "Asia/Kolkata"
    per_day = candles.groupby(candles["timestamp"].dt.date).size()
    assert (per_day == 375).all() and len(per_day) >= 4
    assert client.stats.http_versions == {"HTTP/2": client.stats.total}


def test_candles_equal_what_the_sandbox_serves(sandbox: Sandbox, state_dir: Path) -> None:
    monthly, _ = _monthly_and_weekly(sandbox)
    (future,) = sandbox_contracts(sandbox, monthly, "FUT")
    start = monthly - timedelta(days=70)

    async def scenario(client: UpstoxClient) -> pd.DataFrame:
        return await client.get_historical_data(
            future.expired_instrument_key, "1minute", start, monthly, span_days=30
        )

    candles, client = run(_with_client(sandbox, settings_for(sandbox, state_dir), scenario))
    # 71 days at a 30-day span: three windows, three requests.
    assert client.stats.requests["candles"] == 3
    expected = sandbox.market.candles(future.expired_instrument_key, "1minute", start, monthly)
    assert len(candles) == len(expected) > 40 * 375
    assert candles["timestamp"].iloc[0].date() >= start


def sandbox_contracts(sb: Sandbox, expiry: date, kind: str) -> list:
    async def scenario(client: UpstoxClient) -> list:
        if kind == "FUT":
            return await client.get_future_contracts(NIFTY, expiry)
        return await client.get_option_contracts(NIFTY, expiry)

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        result, _ = run(_with_client(sb, settings_for(sb, Path(tmp)), scenario))
    return result


def test_wrong_token_fails_fast_with_the_fix_named(sandbox: Sandbox, state_dir: Path) -> None:
    secret = "definitely-not-a-valid-token-1234567890"

    async def scenario(client: UpstoxClient) -> None:
        await client.get_expiries(NIFTY)

    with pytest.raises(TokenExpired) as caught:
        run(_with_client(sandbox, settings_for(sandbox, state_dir), scenario, token=secret))
    assert caught.value.code == "UDAPI100050" and caught.value.status == 401
    assert "expirytrack login" in str(caught.value)
    assert secret not in str(caught.value) and secret not in repr(caught.value)


def test_input_errors_fail_at_once_with_the_api_message(sandbox: Sandbox, state_dir: Path) -> None:
    settings = settings_for(sandbox, state_dir)

    async def unknown_underlying(client: UpstoxClient) -> None:
        await client.get_expiries("NSE_INDEX|No Such Index")

    with pytest.raises(InvalidRequest) as caught:
        run(_with_client(sandbox, settings, unknown_underlying))
    assert caught.value.status in (400, 404) and caught.value.code

    async def unknown_contract(client: UpstoxClient) -> None:
        await client.get_candles(
            "NSE_FO|1|28-08-2025", "1minute", date(2025, 8, 1), date(2025, 8, 5)
        )

    with pytest.raises(InvalidRequest):
        run(_with_client(sandbox, settings, unknown_contract))

    async def bad_interval(client: UpstoxClient) -> None:
        await client.get_candles(
            "NSE_FO|1|28-08-2025", "2minute", date(2025, 8, 1), date(2025, 8, 5)
        )

    with pytest.raises(InvalidRequest, match="2minute"):
        run(_with_client(sandbox, settings, bad_interval))


@pytest.mark.parametrize("kind", ["server_error", "drop", "slow"])
def test_transient_faults_are_retried_until_success(kind: str, state_dir: Path) -> None:
    faults = FaultConfig(seed=1, max_count=2, slow_seconds=1.0, **{kind: 1.0})
    with run_sandbox(SandboxConfig(seed=3, today=TODAY, faults=faults)) as sb:
        settings = settings_for(sb, state_dir, timeout_s=0.5)

        async def scenario(client: UpstoxClient) -> list[date]:
            return await client.get_expiries(NIFTY)

        expiries, client = run(_with_client(sb, settings, scenario))
    assert expiries == sb.market.expiries(NIFTY)
    assert client.stats.retries == 2
    assert client.stats.total == 3


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("server_error", UpstoxUnavailable),
        ("drop", UpstoxUnavailable),
        ("malformed", MalformedResponse),
    ],
)
def test_persistent_faults_fail_clearly_after_retries(
    kind: str, error: type, state_dir: Path
) -> None:
    with run_sandbox(SandboxConfig(seed=3, today=TODAY, faults=FaultConfig(**{kind: 1.0}))) as sb:

        async def scenario(client: UpstoxClient) -> None:
            await client.get_expiries(NIFTY)

        with pytest.raises(error, match="gave up after 4 attempts"):
            run(_with_client(sb, settings_for(sb, state_dir), scenario))


def test_circuit_opens_after_consecutive_failures(state_dir: Path) -> None:
    retry = replace(
        FAST_RETRY,
        max_attempts=2,
        circuit_failures=3,
        circuit_cooldown_s=60,
        circuit_min_failing_s=0,
    )
    with run_sandbox(
        SandboxConfig(seed=3, today=TODAY, faults=FaultConfig(server_error=1.0))
    ) as sb:

        async def scenario(client: UpstoxClient) -> int:
            for _ in range(5):
                try:
                    await client.get_expiries(NIFTY)
                except CircuitOpen:
                    return client.stats.total
                except UpstoxUnavailable:
                    continue
            raise AssertionError("the circuit never opened")

        sent, _ = run(_with_client(sb, settings_for(sb, state_dir, retry=retry), scenario))
    assert sent == 3  # the fourth request was refused locally, never sent


def test_429_pauses_then_recovers(state_dir: Path) -> None:
    # The sandbox allows 5 requests a second; the client believes 50. It must meet 429s, pause
    # and still finish every request.
    with run_sandbox(SandboxConfig(seed=3, today=TODAY, per_second=5)) as sb:
        retry = replace(FAST_RETRY, max_attempts=8, rate_limit_pause_s=0.3, max_delay_s=1.0)

        async def scenario(client: UpstoxClient) -> int:
            for _ in range(12):
                await client.get_expiries(NIFTY)
            return client.stats.rate_limited

        rate_limited, client = run(
            _with_client(sb, settings_for(sb, state_dir, retry=retry), scenario)
        )
    assert rate_limited >= 1
    assert client.stats.requests["expiries"] == 12 + rate_limited


def test_persistent_429_raises_rate_limited(state_dir: Path) -> None:
    with run_sandbox(SandboxConfig(seed=3, today=TODAY, per_second=1, time_scale=100)) as sb:
        retry = replace(FAST_RETRY, max_attempts=3, rate_limit_pause_s=0.01, max_delay_s=0.02)

        async def scenario(client: UpstoxClient) -> None:
            for _ in range(3):
                await client.get_expiries(NIFTY)

        with pytest.raises(RateLimited, match=r"UDAPI10005|Too Many"):
            run(_with_client(sb, settings_for(sb, state_dir, retry=retry), scenario))


def test_a_refused_range_is_its_own_error(state_dir: Path) -> None:
    config = SandboxConfig(seed=5, today=TODAY, max_span_days={"1minute": 20})
    with run_sandbox(config) as sb:
        monthly, _ = _monthly_and_weekly(sb)
        (future,) = sandbox_contracts(sb, monthly, "FUT")

        async def scenario(client: UpstoxClient) -> pd.DataFrame:
            return await client.get_candles(
                future.expired_instrument_key, "1minute", monthly - timedelta(days=20), monthly
            )

        with pytest.raises(InvalidDateRange) as caught:
            run(_with_client(sb, settings_for(sb, state_dir), scenario))
    assert caught.value.code == "UDAPI1148"


def test_the_ledger_is_the_upstox_users_so_a_relogin_keeps_counting(
    sandbox: Sandbox, state_dir: Path
) -> None:
    first, second = "token-before-relogin-0001", "token-after-relogin-0002"
    sandbox.add_token(first)
    sandbox.add_token(second)
    settings = settings_for(sandbox, state_dir, ledger_id="SANDBX")

    async def scenario(client: UpstoxClient) -> None:
        await client.get_expiries(NIFTY)

    _, a = run(_with_client(sandbox, settings, scenario, token=first))
    _, b = run(_with_client(sandbox, settings, scenario, token=second))
    assert a.limiter.ledger_path == b.limiter.ledger_path == ledger_path(state_dir, "SANDBX")
    # Without a known user, each token is its own ledger (named by a hash, never the token).
    _, c = run(_with_client(sandbox, settings_for(sandbox, state_dir), scenario, token=first))
    assert c.limiter.ledger_path != a.limiter.ledger_path
    assert first not in str(c.limiter.ledger_path)


def test_limits_are_shared_by_clients_on_one_token(sandbox: Sandbox, state_dir: Path) -> None:
    limits = RateLimits(per_second=3, per_minute=1000, per_30_minutes=10000)
    settings = settings_for(sandbox, state_dir, limits=limits)

    async def scenario() -> float:
        async with (
            UpstoxClient(sandbox.base_url, sandbox.access_token, settings) as a,
            UpstoxClient(sandbox.base_url, sandbox.access_token, settings) as b,
        ):
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await asyncio.gather(*(c.get_expiries(NIFTY) for c in (a, b, a, b, a, b, a)))
            return loop.time() - t0

    elapsed = run(scenario())
    assert elapsed >= 2.0  # 7 requests at 3/s across both clients need more than two seconds


def test_connection_rotation_mid_flight_is_not_an_outage(state_dir: Path) -> None:
    # The server sends GOAWAY every 50 requests while 16 are in flight: the streams cut short
    # are retried on a new connection and the circuit stays closed.
    config = SandboxConfig(
        seed=3,
        today=TODAY,
        requests_per_connection=50,
        per_second=None,
        per_minute=None,
        per_30_minutes=None,
    )
    with run_sandbox(config) as sb:
        limits = RateLimits(per_second=100_000, per_minute=1_000_000, per_30_minutes=10_000_000)
        settings = settings_for(
            sb, state_dir, limits=limits, retry=replace(FAST_RETRY, max_attempts=6)
        )

        async def scenario(client: UpstoxClient) -> int:
            gate = asyncio.Semaphore(16)

            async def one() -> None:
                async with gate:
                    await client.get_expiries(NIFTY)

            await asyncio.gather(*(one() for _ in range(400)))
            return client.stats.requests["expiries"]

        sent, client = run(_with_client(sb, settings, scenario))
    assert sent >= 400 and client.stats.statuses[200] == 400


def _client_process(base_url: str, token: str, ca: str, state: str, n: int, queue) -> None:
    limits = RateLimits(time_scale=0.01, latency_allowance_s=0.05)
    settings = ClientSettings(
        ca_cert_path=Path(ca),
        state_dir=Path(state),
        limits=limits,
        retry=RetryPolicy(max_attempts=3, rate_limit_pause_s=0.05),
    )

    async def work() -> tuple[int, int]:
        async with UpstoxClient(base_url, token, settings) as client:
            gate = asyncio.Semaphore(8)

            async def one() -> None:
                async with gate:
                    await client.get_expiries(NIFTY)

            await asyncio.gather(*(one() for _ in range(n)))
            return client.stats.statuses[200], client.stats.rate_limited

    queue.put(asyncio.run(work()))


def test_two_processes_sharing_a_token_never_meet_a_429(state_dir: Path) -> None:
    import multiprocessing

    # Upstox's three windows ×0.01 (50 per 10 ms, 500 per 0.6 s, 2000 per 18 s): 1,200
    # requests from two processes must wait on the per-minute window twice.
    with run_sandbox(SandboxConfig(seed=3, today=TODAY, time_scale=0.01)) as sb:
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        workers = [
            ctx.Process(
                target=_client_process,
                args=(
                    sb.base_url,
                    sb.access_token,
                    str(sb.ca_cert_path),
                    str(state_dir),
                    600,
                    queue,
                ),
            )
            for _ in range(2)
        ]
        for worker in workers:
            worker.start()
        results = [queue.get(timeout=120) for _ in workers]
        for worker in workers:
            worker.join()
        stats = sb.stats()
    assert results == [(600, 0), (600, 0)]
    assert stats["rate_limited"] == 0
    assert stats["by_kind"]["expiries"] == 1200


def test_plan_error_is_its_own_class_whatever_the_status() -> None:
    from expirytrack_dagster.upstox.client import _classify
    from expirytrack_dagster.upstox.errors import PlanRequired

    body = {
        "status": "error",
        "errors": [
            {
                "errorCode": "UDAPI1149",
                "message": "This API is available exclusively with an Upstox Plus plan subscription",
            }
        ],
    }
    for status in (401, 403):
        error = _classify(httpx.Response(status, json=body), "expiries")
        assert isinstance(error, PlanRequired) and error.code == "UDAPI1149"
        assert "Upstox Plus" in str(error)
    range_body = {
        "status": "error",
        "errors": [{"error_code": "UDAPI1148", "message": "Invalid date range"}],
    }
    assert isinstance(_classify(httpx.Response(400, json=range_body), "candles"), InvalidDateRange)
