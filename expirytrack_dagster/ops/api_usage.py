"""The ``api_usage`` table: what each run spent of the Upstox budget, and the budget over time.

One row per run (per partition): requests by kind, 429 answers, retries, latency p50/p95,
candles received per candle request, time waited for the rate limiter, and how much of the
30-minute budget the Upstox user had used (across every process) when the run ended. Read over
time, the last column is the picture of budget use: :func:`budget_history` and
:func:`budget_chart`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from expirytrack_dagster.storage.database import connect
from expirytrack_dagster.storage.schema import SCHEMA, readable_names
from expirytrack_dagster.upstox.client import RequestStats

BUDGET_WINDOW = 2
"""Index of the 30-minute window in ``SharedRateLimiter.snapshot()["windows"]``."""


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100, linear interpolation) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class ApiUsage:
    """One run's use of the API; the columns of ``api_usage``."""

    run_id: str
    partition_key: str
    recorded_at: datetime
    data_source: str | None
    requests: int
    requests_by_kind: str  # JSON object
    candle_requests: int
    rate_limited: int
    retries: int
    transport_errors: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    candles_fetched: int
    candles_per_request: float | None
    limiter_wait_s: float
    budget_used_30min: int | None
    budget_limit_30min: int | None


def usage_from_stats(
    run_id: str,
    partition_key: str,
    stats: RequestStats,
    *,
    candles_fetched: int,
    data_source: str | None = None,
    latencies_s: Sequence[float] = (),
    budget: Mapping[str, Any] | None = None,
    recorded_at: datetime | None = None,
) -> ApiUsage:
    """The row for a run from its client's ``stats``.

    ``candles_fetched``: candles the API returned in this run; ``latencies_s``: each request's
    duration; ``budget``: the rate limiter's ``snapshot()`` at the end of the run.
    """
    by_kind = {kind: int(n) for kind, n in sorted(stats.requests.items())}
    candle_requests = by_kind.get("candles", 0)
    window = budget["windows"][BUDGET_WINDOW] if budget else None
    p50, p95 = percentile(latencies_s, 50), percentile(latencies_s, 95)
    return ApiUsage(
        run_id=run_id,
        partition_key=partition_key,
        recorded_at=recorded_at or datetime.now(UTC),
        data_source=data_source,
        requests=stats.total,
        requests_by_kind=json.dumps(by_kind),
        candle_requests=candle_requests,
        rate_limited=stats.rate_limited,
        retries=stats.retries,
        transport_errors=stats.transport_errors,
        latency_p50_ms=None if p50 is None else round(p50 * 1000, 3),
        latency_p95_ms=None if p95 is None else round(p95 * 1000, 3),
        candles_fetched=candles_fetched,
        candles_per_request=(
            round(candles_fetched / candle_requests, 3) if candle_requests else None
        ),
        limiter_wait_s=round(stats.limiter_wait_s, 3),
        budget_used_30min=int(window["count"]) if window else None,
        budget_limit_30min=int(window["limit"]) if window else None,
    )


def candles_fetched_since(status: pd.DataFrame, since: datetime) -> int:
    """Candles of the contract-days answered at or after ``since`` (this run's fetches).

    ``status`` is the candles asset's per-(contract, day) frame (``candle_count``, ``fetched_at``):
    days reused from the landing zone were fetched earlier and do not count.
    """
    if status.empty:
        return 0
    fetched = pd.to_datetime(status["fetched_at"], utc=True)
    return int(status.loc[fetched >= pd.Timestamp(since), "candle_count"].sum())


def record_api_usage(database: Path | str, usage: ApiUsage) -> None:
    """Append ``usage`` to ``api_usage`` (the write-open creates the table if it is missing)."""
    row = pd.DataFrame([asdict(usage)])
    with connect(database) as db:
        db.register("_api_usage_row", row)
        db.execute(f"INSERT INTO {SCHEMA}.api_usage BY NAME SELECT * FROM _api_usage_row")
        db.unregister("_api_usage_row")


def usage_metadata(usage: ApiUsage) -> dict[str, Any]:
    """The row as Dagster metadata values (for the candles asset's materialisation)."""
    return {
        "api_requests_by_kind": json.loads(usage.requests_by_kind),
        "api_latency_p50_ms": usage.latency_p50_ms,
        "api_latency_p95_ms": usage.latency_p95_ms,
        "candles_per_request": usage.candles_per_request,
        "budget_used_30min": usage.budget_used_30min,
    }


def budget_history(database: Path | str, limit: int = 12) -> pd.DataFrame:
    """The last ``limit`` runs, oldest first: when, which partition, requests, budget used."""
    with connect(database, read_only=True) as db:
        if "api_usage" not in readable_names(db):
            return pd.DataFrame(
                columns=["recorded_at", "partition_key", "requests", "budget_used_30min"]
            )
        return db.execute(
            "SELECT * FROM (SELECT recorded_at, partition_key, requests, rate_limited, "
            "budget_used_30min, budget_limit_30min FROM api_usage "
            "ORDER BY recorded_at DESC LIMIT ?) ORDER BY recorded_at",
            [limit],
        ).fetchdf()


def budget_chart(history: pd.DataFrame, width: int = 30) -> list[str]:
    """A text bar per run: the 30-minute budget in use when it ended, e.g. ``#####-----``."""
    lines = []
    for row in history.itertuples():
        used, limit = row.budget_used_30min, row.budget_limit_30min
        if pd.isna(used) or pd.isna(limit) or not limit:
            bar, share = "?" * width, "budget not recorded"
        else:
            filled = min(width, round(width * used / limit))
            bar, share = "#" * filled + "-" * (width - filled), f"{int(used):,}/{int(limit):,}"
        when = pd.Timestamp(row.recorded_at).tz_convert("Asia/Kolkata").strftime("%m-%d %H:%M")
        lines.append(
            f"{when} IST {bar} {share} ({int(row.requests):,} requests, {row.partition_key})"
        )
    return lines
