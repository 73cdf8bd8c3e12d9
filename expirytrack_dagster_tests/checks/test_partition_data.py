"""What a check reads: the partition's scope from the stored expiry and the collection settings."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from dagster import Failure

from expirytrack_dagster.checks.partition_data import load_candles, partition_scope
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster.storage.database import connect
from expirytrack_dagster.storage.schema import create_tables

KEY = "NIFTY_2025-08-28"


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "expirytrack.duckdb"
    with connect(path) as db:
        create_tables(db)
        db.execute(
            "INSERT INTO expiries VALUES (?, 'NIFTY', 'NSE_INDEX|Nifty 50', ?, true, 'sandbox', ?)",
            [KEY, date(2025, 8, 28), datetime.now(UTC)],
        )
        db.execute(
            "INSERT INTO candles VALUES "
            "(?, 'NSE_FO|2|28-08-2025', '1minute', '2025-08-28 09:16:00+05:30', 1, 1, 1, 1, 1, 1),"
            "(?, 'NSE_FO|1|28-08-2025', '1minute', '2025-08-28 09:15:00+05:30', 1, 1, 1, 1, 1, 1),"
            "('OTHER_2025-08-28', 'NSE_FO|3|28-08-2025', '1minute', '2025-08-28 09:15:00+05:30', "
            "1, 1, 1, 1, 1, 1)",
            [KEY, KEY],
        )
    return path


def test_scope_is_the_collected_window_interval_and_monthly_flag(database: Path) -> None:
    collection = CollectionSettings(database=str(database), lookback_months=2, interval="5minute")
    with connect(database, read_only=True) as db:
        scope = partition_scope(db, KEY, collection)
    assert (scope.expiry, scope.monthly) == (date(2025, 8, 28), True)
    assert (scope.window_start, scope.window_end) == (date(2025, 6, 28), date(2025, 8, 28))
    assert scope.interval == "5minute"


def test_scope_without_an_expiry_row_fails_clearly(database: Path) -> None:
    with connect(database, read_only=True) as db, pytest.raises(Failure, match="expiries first"):
        partition_scope(db, "NIFTY_2025-07-31", CollectionSettings(database=str(database)))


def test_candles_are_the_partitions_only_sorted_in_ist(database: Path) -> None:
    with connect(database, read_only=True) as db:
        frame = load_candles(db, KEY)
    assert list(frame["expired_instrument_key"]) == ["NSE_FO|1|28-08-2025", "NSE_FO|2|28-08-2025"]
    assert str(frame["timestamp"].dt.tz) == "Asia/Kolkata"
    assert frame["timestamp"].dt.strftime("%H:%M").tolist() == ["09:15", "09:16"]
    assert "partition_key" not in frame
