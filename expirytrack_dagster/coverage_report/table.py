"""The ``coverage_report`` table: one row per partition, aggregated in DuckDB, with its verdict.

A partition's verdict weighs two things: how many of its (contract, trading day) requests were
answered, from ``candle_fetch_status``, and its check status (see ``check_status``).
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from expirytrack_dagster.coverage_report.check_status import partition_check_status
from expirytrack_dagster.partitions import parse_partition_key, split_partition_keys
from expirytrack_dagster.storage.database import connect
from expirytrack_dagster.storage.schema import readable_names

GREEN_AT = 99.0
"""Completeness (%) at or above which a partition is complete."""
YELLOW_AT = 90.0
"""Completeness (%) at or above which a partition is partial rather than incomplete."""

VERDICTS: tuple[str, ...] = ("complete", "partial", "incomplete", "failed", "not_collected")
"""Every verdict a partition can get, best first (see ``verdict``)."""

COUNT_COLUMNS: list[str] = [
    "contracts",
    "candles",
    "contract_days",
    "days_complete",
    "days_no_trades",
    "days_failed",
    "failed_contracts",
]
"""The report's counts; a partition with nothing stored has 0 in each."""

REPORT_COLUMNS: list[str] = [
    "partition_key",
    "underlying_symbol",
    "expiry",
    "is_monthly",
    "data_source",
    *COUNT_COLUMNS,
    "completeness_pct",
    "check_status",
    "failed_checks",
    "verdict",
    "collected_at",
    "reported_at",
]
"""Columns of the ``coverage_report`` table, in order (DDL in ``storage.schema``)."""

_STORED = {
    "expiries": """
        SELECT partition_key, is_monthly, data_source FROM main.expiries""",
    "contracts": """
        SELECT partition_key, count(*) AS contracts FROM main.contracts GROUP BY ALL""",
    "candles": """
        SELECT partition_key, count(*) AS candles FROM main.candles GROUP BY ALL""",
    "candle_fetch_status": """
        SELECT
            partition_key,
            count(*) AS contract_days,
            count(*) FILTER (WHERE status = 'complete') AS days_complete,
            count(*) FILTER (WHERE status = 'no_trades') AS days_no_trades,
            count(*) FILTER (WHERE status = 'failed') AS days_failed,
            count(DISTINCT expired_instrument_key) FILTER (WHERE status = 'failed')
                AS failed_contracts,
            max(fetched_at) AS collected_at
        FROM main.candle_fetch_status
        GROUP BY ALL""",
}


def verdict(contract_days: int, completeness_pct: float | None, check_status: str) -> str:
    """``not_collected``, ``failed`` (blocking check), ``incomplete``, ``partial`` or ``complete``."""
    if not contract_days or completeness_pct is None or np.isnan(completeness_pct):
        return "not_collected"
    if check_status == "failed":
        return "failed"
    if completeness_pct < YELLOW_AT:
        return "incomplete"
    if completeness_pct < GREEN_AT:
        return "partial"
    return "complete"


def stored_partitions(database: Path | str) -> list[pd.DataFrame]:
    """Per-partition aggregates of each table; a missing file or table counts as empty."""
    if not Path(database).exists():
        return []
    with connect(database, read_only=True) as db:
        present = readable_names(db)
        return [db.execute(sql).df() for table, sql in _STORED.items() if table in present]


def build_report(
    partition_keys: Sequence[str],
    stored: Sequence[pd.DataFrame],
    check_statuses: Mapping[str, Mapping[str, str]],
    reported_at: datetime,
) -> pd.DataFrame:
    """One row per partition (registered or stored), sorted by underlying and expiry.

    ``stored`` is what :func:`stored_partitions` returns; ``check_statuses`` maps partition key
    -> rule -> latest status. Keys that are not ``SYMBOL_YYYY-MM-DD`` are left out
    (``split_partition_keys`` finds them).
    """
    every = set(partition_keys).union(*(frame["partition_key"] for frame in stored))
    ours, _ = split_partition_keys(sorted(every))
    keys = sorted(ours, key=parse_partition_key)
    report = pd.DataFrame({"partition_key": pd.Series(keys, dtype=object)})
    for frame in stored:
        report = report.merge(frame, on="partition_key", how="left")
    for column in REPORT_COLUMNS:
        if column not in report:
            report[column] = 0 if column in COUNT_COLUMNS else None
    parsed = [parse_partition_key(key) for key in keys]
    report["underlying_symbol"] = [p.symbol for p in parsed]
    report["expiry"] = [p.expiry for p in parsed]
    report["is_monthly"] = report["is_monthly"].astype("boolean")
    for column in COUNT_COLUMNS:
        report[column] = report[column].fillna(0).astype("int64")
    answered = report["days_complete"] + report["days_no_trades"]
    report["completeness_pct"] = (
        (100.0 * answered / report["contract_days"]).where(report["contract_days"] > 0).round(3)
    )
    checks = [partition_check_status(check_statuses.get(key, {})) for key in keys]
    report["check_status"] = [status for status, _ in checks]
    report["failed_checks"] = [failed for _, failed in checks]
    report["verdict"] = [
        verdict(days, pct, status)
        for days, pct, status in zip(
            report["contract_days"], report["completeness_pct"], report["check_status"], strict=True
        )
    ]
    report["collected_at"] = pd.to_datetime(report["collected_at"], utc=True)
    report["reported_at"] = pd.Timestamp(reported_at)
    return report[REPORT_COLUMNS]
