"""Fetching a partition's candles: skip what already landed, fetch the rest, land each contract.

Plain async functions (no Dagster) so they are tested directly; the ``candles`` asset wraps them.
Errors that doom the whole partition (a dead token, an open circuit, a persistent 429, a missing
plan) stop it at once — everything landed so far stays for the retry. Errors specific to one
contract mark that contract failed and the rest carry on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from expirytrack_dagster.calendar import trading_days_between
from expirytrack_dagster.storage.landing import CandleLanding
from expirytrack_dagster.upstox.client import UpstoxClient
from expirytrack_dagster.upstox.errors import (
    CircuitOpen,
    PlanRequired,
    RateLimited,
    TokenExpired,
    UpstoxError,
)

log = logging.getLogger(__name__)

FATAL_ERRORS: tuple[type[UpstoxError], ...] = (TokenExpired, PlanRequired, CircuitOpen, RateLimited)
"""Failures that would fail every remaining contract the same way: stop the partition."""


@dataclass(frozen=True)
class ContractToFetch:
    """One contract of the partition and whether it trades every session (a future)."""

    expired_instrument_key: str
    instrument_type: str


@dataclass
class CollectionReport:
    """What one collection pass did."""

    fetched: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def needs_fetch(
    landing: CandleLanding,
    partition_key: str,
    contract: ContractToFetch,
    from_date: date,
    to_date: date,
    force: bool,
) -> bool:
    """False when the contract already landed for (at least) this window, unless forced."""
    if force:
        return True
    landed = landing.landed(partition_key, contract.expired_instrument_key)
    return landed is None or landed.from_date > from_date or landed.to_date < to_date


async def collect_candles(
    client: UpstoxClient,
    landing: CandleLanding,
    partition_key: str,
    contracts: Sequence[ContractToFetch],
    from_date: date,
    to_date: date,
    *,
    force: bool = False,
    max_in_flight: int = 8,
) -> CollectionReport:
    """Land the candles of every contract that has not landed yet (all of them when ``force``)."""
    report = CollectionReport()
    todo = []
    for contract in contracts:
        if needs_fetch(landing, partition_key, contract, from_date, to_date, force):
            todo.append(contract)
        else:
            report.reused.append(contract.expired_instrument_key)
    gate = asyncio.Semaphore(max_in_flight)

    async def fetch(contract: ContractToFetch) -> None:
        key = contract.expired_instrument_key
        async with gate:
            try:
                candles = await client.get_historical_data(
                    key,
                    landing.interval,
                    from_date,
                    to_date,
                    continuous=contract.instrument_type == "FUT",
                )
            except FATAL_ERRORS:
                raise
            except UpstoxError as exc:
                landing.save_failure(partition_key, key, str(exc))
                report.failed[key] = str(exc)
                log.warning("%s failed: %s", key, exc)
                return
        landing.save(partition_key, key, candles, from_date, to_date)
        report.fetched.append(key)

    tasks = [asyncio.create_task(fetch(contract)) for contract in todo]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return report


def fetch_status(
    landing: CandleLanding,
    partition_key: str,
    contract_keys: Sequence[str],
    from_date: date,
    to_date: date,
) -> tuple[pd.DataFrame, list[str]]:
    """Per-(contract, trading day) status from what landed, and the files to publish.

    ``complete``: the API answered and the day has candles; ``no_trades``: it answered with none
    that day; ``failed``: the contract's download failed and never landed.
    """
    days = trading_days_between(from_date, to_date)
    rows: list[dict[str, object]] = []
    files: list[str] = []
    for key in contract_keys:
        landed = landing.landed(partition_key, key)
        if landed is None:
            failure = landing.failure(partition_key, key)
            error = failure.error if failure else "never fetched"
            rows.extend(
                {
                    "expired_instrument_key": key,
                    "trading_date": day,
                    "status": "failed",
                    "candle_count": 0,
                    "error": error,
                    "fetched_at": failure.failed_at if failure else None,
                }
                for day in days
            )
            continue
        files.append(str(landed.path))
        per_day = _candles_per_day(landed.path) if landed.candle_count else {}
        rows.extend(
            {
                "expired_instrument_key": key,
                "trading_date": day,
                "status": "complete" if per_day.get(day, 0) else "no_trades",
                "candle_count": per_day.get(day, 0),
                "error": None,
                "fetched_at": landed.fetched_at,
            }
            for day in days
        )
    status = pd.DataFrame(
        rows,
        columns=[
            "expired_instrument_key",
            "trading_date",
            "status",
            "candle_count",
            "error",
            "fetched_at",
        ],
    )
    status.insert(0, "partition_key", partition_key)
    status["candle_count"] = status["candle_count"].astype("int64")
    status["fetched_at"] = pd.to_datetime(status["fetched_at"], utc=True)
    return status, files


def _candles_per_day(path: object) -> dict[date, int]:
    stamps = pd.read_parquet(path, columns=["timestamp"])["timestamp"]
    return stamps.dt.date.value_counts().to_dict()
