"""The coverage_report table: verdicts, DuckDB aggregates, one row per partition."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from expirytrack_dagster.coverage_report import (
    REPORT_COLUMNS,
    build_report,
    stored_partitions,
    verdict,
)
from expirytrack_dagster.storage.schema import TABLES_V1, migrate
from expirytrack_dagster_tests.coverage_report.conftest import NOW


@pytest.mark.parametrize(
    ("contract_days", "pct", "checks", "expected"),
    [
        (0, None, "not_checked", "not_collected"),
        (100, 100.0, "passed", "complete"),
        (100, 99.0, "warn", "complete"),  # a warning does not redden coverage
        (100, 98.99, "passed", "partial"),
        (100, 90.0, "passed", "partial"),
        (100, 89.99, "passed", "incomplete"),
        (100, 100.0, "failed", "failed"),  # a blocking check failed
    ],
)
def test_verdict_thresholds(contract_days: int, pct: float | None, checks: str, expected: str):
    assert verdict(contract_days, pct, checks) == expected


def test_build_report_covers_registered_and_stored_partitions(report: pd.DataFrame) -> None:
    report = report.set_index("partition_key")
    assert list(report.index) == [
        "NIFTY_2025-08-07",
        "RELIANCE_2025-07-31",
        "RELIANCE_2025-08-28",
        "RELIANCE_2025-09-30",
    ]
    assert report.loc["RELIANCE_2025-08-28", "completeness_pct"] == 95.0
    assert report["verdict"].to_dict() == {
        "NIFTY_2025-08-07": "failed",
        "RELIANCE_2025-07-31": "complete",
        "RELIANCE_2025-08-28": "partial",
        "RELIANCE_2025-09-30": "not_collected",
    }
    assert report.loc["NIFTY_2025-08-07", "failed_checks"] == "fetch_outcomes"
    never = report.loc["RELIANCE_2025-09-30"]
    assert (never["contracts"], never["candles"], never["contract_days"]) == (0, 0, 0)
    assert pd.isna(never["completeness_pct"]) and pd.isna(never["is_monthly"])
    assert never["check_status"] == "not_checked"


def test_a_foreign_partition_key_is_left_out_not_fatal() -> None:
    report = build_report(["nifty-test", "RELIANCE_2025-07-31", "NIFTY_2025-13-01"], [], {}, NOW)
    assert list(report["partition_key"]) == ["RELIANCE_2025-07-31"]


def test_stored_partitions_aggregate_each_table_in_duckdb(tmp_path: Path) -> None:
    database = tmp_path / "expirytrack.duckdb"
    assert stored_partitions(database) == []  # no file yet: nothing stored
    key = "RELIANCE_2025-08-28"
    fetched = datetime(2025, 9, 1, 10, 0, tzinfo=UTC)
    with duckdb.connect(str(database)) as db:
        migrate(db)
        db.executemany(
            "INSERT INTO candle_fetch_status VALUES (?, ?, ?, ?, ?, NULL, ?)",
            [
                (key, "FUT", date(2025, 8, 27), "complete", 375, fetched),
                (key, "FUT", date(2025, 8, 28), "failed", 0, fetched),
                (key, "CE", date(2025, 8, 27), "no_trades", 0, fetched),
                (key, "CE", date(2025, 8, 28), "failed", 0, fetched),
            ],
        )
    frames = {frame.columns[1]: frame for frame in stored_partitions(database)}
    assert set(frames) == {"is_monthly", "contracts", "candles", "contract_days"}
    status = frames["contract_days"].iloc[0]
    assert status["partition_key"] == key
    assert (status["contract_days"], status["days_complete"], status["days_no_trades"]) == (4, 1, 1)
    assert (status["days_failed"], status["failed_contracts"]) == (2, 2)
    assert pd.Timestamp(status["collected_at"]) == pd.Timestamp(fetched)
    report = build_report([], stored_partitions(database), {}, NOW)
    assert list(report["completeness_pct"]) == [50.0]
    assert list(report["verdict"]) == ["incomplete"]


def test_stored_partitions_skip_missing_tables(tmp_path: Path) -> None:
    database = tmp_path / "expirytrack.duckdb"
    with duckdb.connect(str(database)) as db:
        db.execute(TABLES_V1["expiries"])
    (expiries,) = stored_partitions(database)
    assert list(expiries.columns) == ["partition_key", "is_monthly", "data_source"]


def test_report_columns_are_the_stored_table_in_order(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "expirytrack.duckdb")) as db:
        migrate(db)
        columns = [name for (name, *_) in db.execute("DESCRIBE coverage_report").fetchall()]
    assert columns == REPORT_COLUMNS
