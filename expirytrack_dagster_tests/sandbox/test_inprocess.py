"""The in-process sandbox: the same answers as the served one, through httpx's ASGI transport."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest

from expirytrack_dagster.sandbox import FaultConfig, Sandbox, run_sandbox
from expirytrack_dagster.sandbox.inprocess import is_in_process, transport_for
from expirytrack_dagster_tests.sandbox.conftest import (
    BASE,
    BASE_CONFIG,
    NIFTY,
    candle_path,
    http_client,
    monthly_and_weekly,
)


async def _get_all(sb: Sandbox, paths: list[str]) -> list[httpx.Response]:
    async with httpx.AsyncClient(
        base_url=sb.base_url, headers=sb.headers, transport=transport_for(sb.base_url)
    ) as client:
        return [await client.get(path) for path in paths]


def _paths(sb: Sandbox) -> list[str]:
    monthly, weekly = monthly_and_weekly(sb)
    future = sb.market.future_contracts(NIFTY, monthly)[0]["instrument_key"]
    option = sb.market.option_contracts(NIFTY, weekly)[0]["instrument_key"]
    return [
        f"{BASE}/expiries?instrument_key={NIFTY}",
        f"{BASE}/option/contract?instrument_key={NIFTY}&expiry_date={weekly}",
        candle_path(future, "1minute", monthly, monthly - timedelta(days=9)),
        candle_path(option, "5minute", weekly, weekly - timedelta(days=4)),
        candle_path("NSE_FO|1|01-01-2025", "1minute", monthly, monthly),  # names no contract
    ]


def test_in_process_answers_equal_the_served_sandbox_byte_for_byte() -> None:
    with run_sandbox(BASE_CONFIG) as served, http_client(served) as client:
        paths = _paths(served)
        expected = [client.get(path) for path in paths]
    with run_sandbox(BASE_CONFIG, in_process=True) as local:
        assert is_in_process(local.base_url) and local.base_url.endswith(".sandbox.invalid")
        got = asyncio.run(_get_all(local, paths))
        stats = local.stats()
    assert [r.status_code for r in got] == [r.status_code for r in expected]
    assert [r.content for r in got] == [r.content for r in expected]
    assert all(r.headers["x-sandbox"] == "synthetic" for r in got)
    assert stats["total"] == len(paths)  # the same counters the served one keeps


def test_a_dropped_request_is_a_transport_error_and_counted() -> None:
    faults = FaultConfig(drop=1.0, max_count=1)
    with run_sandbox(replace(BASE_CONFIG, faults=faults), in_process=True) as sb:
        path = f"{BASE}/expiries?instrument_key={NIFTY}"
        with pytest.raises(httpx.ReadError, match="dropped"):
            asyncio.run(_get_all(sb, [path]))
        after = asyncio.run(_get_all(sb, [path]))  # max_count=1: the next one is answered
        stats = sb.stats()
    assert after[0].status_code == 200
    assert stats["faults"] == {"drop": 1}


def test_a_stopped_or_unknown_sandbox_is_named_not_reached() -> None:
    with run_sandbox(BASE_CONFIG, in_process=True) as sb:
        url = sb.base_url
    with pytest.raises(LookupError, match=r"no in-process sandbox at http://sb-.*\.invalid"):
        transport_for(url)
    assert not is_in_process("https://api.upstox.com")
    assert not is_in_process("https://127.0.0.1:8443")
