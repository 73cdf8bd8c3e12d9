"""The api_usage table: one row per run, from a real client's counters against the sandbox."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from expirytrack_dagster.ops.api_usage import (
    budget_chart,
    budget_history,
    candles_fetched_since,
    percentile,
    record_api_usage,
    usage_from_stats,
)
from expirytrack_dagster.sandbox import SandboxConfig, run_sandbox
from expirytrack_dagster.upstox.client import ClientSettings, UpstoxClient

TODAY = date(2025, 10, 1)
NIFTY = "NSE_INDEX|Nifty 50"


def test_percentiles_interpolate() -> None:
    assert percentile([], 50) is None
    assert percentile([0.3], 95) == 0.3
    assert percentile([0.1, 0.2, 0.3, 0.4], 50) == pytest.approx(0.25)
    assert percentile(list(range(101)), 95) == pytest.approx(95)


async def _spend(client: UpstoxClient) -> tuple[int, list[float]]:
    """One expiry listing, then candles of a future over three windows; candles and latencies."""
    latencies = []
    started = time.perf_counter()
    expiries = await client.get_expiries(NIFTY)
    latencies.append(time.perf_counter() - started)
    expiry = max(d for d in expiries if d.month == 8 and d.year == 2025)
    started = time.perf_counter()
    (future,) = [c for c in await client.get_future_contracts(NIFTY, expiry) if c.expiry == expiry]
    latencies.append(time.perf_counter() - started)
    candles = 0
    for first in (date(2025, 8, 1), date(2025, 8, 11), date(2025, 8, 21)):
        started = time.perf_counter()
        frame = await client.get_candles(
            future.expired_instrument_key, "1minute", first, first + timedelta(days=5)
        )
        latencies.append(time.perf_counter() - started)
        candles += len(frame)
    return candles, latencies


def test_a_runs_usage_is_recorded_from_the_clients_counters(tmp_path: Path) -> None:
    database = tmp_path / "expirytrack.duckdb"
    with run_sandbox(SandboxConfig(seed=3, today=TODAY)) as sandbox:
        settings = ClientSettings(ca_cert_path=sandbox.ca_cert_path, state_dir=tmp_path / "state")

        async def go() -> tuple[object, int, list[float], dict]:
            async with UpstoxClient(sandbox.base_url, sandbox.access_token, settings) as client:
                candles, latencies = await _spend(client)
                return client.stats, candles, latencies, client.limiter.snapshot()

        stats, candles, latencies, budget = asyncio.run(go())
        served = sandbox.stats()["by_kind"]
    usage = usage_from_stats(
        "run-1",
        "NIFTY_2025-08-28",
        stats,
        candles_fetched=candles,
        data_source="sandbox",
        latencies_s=latencies,
        budget=budget,
        recorded_at=datetime(2025, 10, 1, 10, 0, tzinfo=UTC),
    )
    record_api_usage(database, usage)

    with duckdb.connect(str(database), read_only=True) as db:
        row = db.execute("SELECT * FROM api_usage").fetchdf().iloc[0]
    by_kind = json.loads(row["requests_by_kind"])
    assert by_kind == {"candles": 3, "expiries": 1, "future_contracts": 1}
    assert {k: served[k] for k in by_kind} == by_kind  # what the server saw
    assert row["requests"] == 5 and row["candle_requests"] == 3
    assert row["rate_limited"] == 0 and row["retries"] == 0
    assert candles > 0 and row["candles_fetched"] == candles
    assert row["candles_per_request"] == pytest.approx(candles / 3, abs=1e-3)
    assert row["latency_p50_ms"] == pytest.approx(percentile(latencies, 50) * 1000, abs=1e-3)
    assert row["latency_p95_ms"] >= row["latency_p50_ms"] > 0
    assert row["budget_used_30min"] == 5 and row["budget_limit_30min"] == 2000


def test_budget_history_draws_the_budget_in_use_after_each_run(tmp_path: Path) -> None:
    database = tmp_path / "expirytrack.duckdb"
    from expirytrack_dagster.upstox.client import RequestStats

    for minute, used in ((0, 500), (20, 1500), (40, 2000)):
        stats = RequestStats()
        stats.requests["candles"] = used // 10
        budget = {"windows": [{}, {}, {"count": used, "limit": 2000}]}
        record_api_usage(
            database,
            usage_from_stats(
                f"run-{minute}",
                "NIFTY_2025-08-28",
                stats,
                candles_fetched=used * 300,
                budget=budget,
                recorded_at=datetime(2025, 10, 1, 4, minute, tzinfo=UTC),
            ),
        )
    history = budget_history(database)
    assert list(history["budget_used_30min"]) == [500, 1500, 2000]
    lines = budget_chart(history, width=20)
    assert lines[0].startswith("10-01 09:30 IST #####---------------")
    assert "500/2,000 (50 requests, NIFTY_2025-08-28)" in lines[0]
    assert "#" * 20 in lines[2] and "2,000/2,000" in lines[2]


def test_only_days_answered_in_this_run_count_as_fetched() -> None:
    import pandas as pd

    run_started = datetime(2025, 10, 1, 10, 0, tzinfo=UTC)
    status = pd.DataFrame(
        {
            "candle_count": [375, 375, 0, 120],
            "fetched_at": [
                run_started - timedelta(days=1),  # reused from the landing zone
                run_started + timedelta(seconds=5),
                run_started + timedelta(seconds=6),
                None,  # failed, never answered
            ],
        }
    )
    assert candles_fetched_since(status, run_started) == 375
    assert candles_fetched_since(status.iloc[:0], run_started) == 0
