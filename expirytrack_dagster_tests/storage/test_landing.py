"""The landing zone: whole files or none, day records kept with the data, old files still read."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from expirytrack_dagster.calendar import trading_days_between
from expirytrack_dagster.storage.landing import (
    CANDLE_FILE_COLUMNS,
    LEGACY_SPAN_DAYS,
    CandleLanding,
    DayRecord,
)
from expirytrack_dagster.upstox.models import empty_candles
from expirytrack_dagster_tests.storage.test_io_manager import candles_frame

KEY = "NIFTY_2025-08-28"
CONTRACT = "NSE_FO|64103|28-08-2025"
DAYS = trading_days_between(date(2025, 7, 28), date(2025, 8, 28))
NOW = datetime(2025, 9, 1, 10, 0, tzinfo=UTC)


def records(status: str, span: int | None = 93) -> dict[date, DayRecord]:
    return {day: DayRecord(status, span, None, NOW) for day in DAYS}


def test_save_is_atomic_and_keeps_each_days_record(tmp_path: Path) -> None:
    landing = CandleLanding(tmp_path, "1minute")
    days = records("no_trades") | {date(2025, 8, 1): DayRecord("complete", 93, None, NOW)}
    landed = landing.save(KEY, CONTRACT, candles_frame("2025-08-01 09:15", 375, 100.0), days)
    assert landed.path.name == "NSE_FO__64103__28-08-2025.parquet"
    assert [p.name for p in landed.path.parent.iterdir()] == [landed.path.name]  # no temp files
    again = landing.load(KEY, CONTRACT, DAYS)
    assert again.version == 2 and again.candle_count == 375
    assert again.days == days
    assert landing.candles_per_day(again) == {date(2025, 8, 1): 375}
    frame = pd.read_parquet(landed.path)
    assert list(frame.columns) == list(CANDLE_FILE_COLUMNS)
    assert set(frame["partition_key"]) == {KEY}
    assert set(frame["expired_instrument_key"]) == {CONTRACT}
    assert str(frame["timestamp"].dt.tz) == "Asia/Kolkata"


def test_identical_duplicates_never_land(tmp_path: Path) -> None:
    landing = CandleLanding(tmp_path, "1minute")
    candles = candles_frame("2025-08-01 09:15", 10, 100.0)
    doubled = pd.concat([candles, candles.iloc[[3]]], ignore_index=True)
    landed = landing.save(KEY, CONTRACT, doubled, records("complete"))
    assert landed.candle_count == 10 and landed.duplicates_collapsed == 1
    assert landing.candles(landed)["timestamp"].is_unique


@pytest.mark.parametrize("rows", [0, 1, 2, 375])
def test_a_file_has_the_table_pandas_would_have_written(tmp_path: Path, rows: int) -> None:
    """Files are built column by column in Arrow; readers see what ``from_pandas`` of the
    frame with its key columns assigned gives: the same columns, types, values and metadata."""
    landing = CandleLanding(tmp_path, "1minute")
    candles = candles_frame("2025-08-01 09:15", rows, 100.0).iloc[::-1]  # unsorted input
    landed = landing.save(KEY, CONTRACT, candles, records("complete"))
    expected = pa.Table.from_pandas(
        candles.sort_values("timestamp")
        .reset_index(drop=True)
        .assign(partition_key=KEY, expired_instrument_key=CONTRACT, interval="1minute")[
            list(CANDLE_FILE_COLUMNS)
        ],
        preserve_index=False,
    )
    stored = pq.read_table(landed.path)
    assert stored.schema.metadata[b"pandas"] == expected.schema.metadata[b"pandas"]
    assert stored.replace_schema_metadata(None).equals(expected.replace_schema_metadata(None))


def test_no_trades_lands_as_an_empty_file(tmp_path: Path) -> None:
    landing = CandleLanding(tmp_path, "1minute")
    landing.save(KEY, CONTRACT, empty_candles(), records("no_trades"))
    landed = landing.load(KEY, CONTRACT, DAYS)
    assert landed.candle_count == 0 and all(r.final for r in landed.days.values())


def _write_version_1(path: Path, candles: pd.DataFrame) -> None:
    """A file as the landing zone wrote it before day records existed."""
    frame = candles.assign(partition_key=KEY, expired_instrument_key=CONTRACT, interval="1minute")[
        list(CANDLE_FILE_COLUMNS)
    ]
    outcome = {
        "expired_instrument_key": CONTRACT,
        "from_date": "2025-07-28",
        "to_date": "2025-08-28",
        "candle_count": len(frame),
        "fetched_at": NOW.isoformat(),
    }
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata(
        {**table.schema.metadata, b"expirytrack.outcome": json.dumps(outcome).encode()}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def test_a_version_1_file_reads_as_unconfirmed_days_at_the_old_span(tmp_path: Path) -> None:
    landing = CandleLanding(tmp_path, "1minute")
    path = landing.partition_dir(KEY) / "NSE_FO__64103__28-08-2025.parquet"
    _write_version_1(path, candles_frame("2025-08-01 09:15", 375, 100.0))
    landed = landing.load(KEY, CONTRACT, DAYS)
    assert landed.version == 1 and landed.candle_count == 375
    assert set(landed.days) == set(DAYS)
    assert {(r.status, r.span_days) for r in landed.days.values()} == {
        ("unconfirmed", LEGACY_SPAN_DAYS)
    }


def test_a_version_1_failure_note_fails_every_day(tmp_path: Path) -> None:
    landing = CandleLanding(tmp_path, "1minute")
    note = landing.partition_dir(KEY) / "NSE_FO__64103__28-08-2025.failed.json"
    note.parent.mkdir(parents=True)
    note.write_text(json.dumps({"error": "HTTP 500 boom", "failed_at": NOW.isoformat()}))
    landed = landing.load(KEY, CONTRACT, DAYS)
    assert {(r.status, r.error) for r in landed.days.values()} == {("failed", "HTTP 500 boom")}
    landing.save(KEY, CONTRACT, empty_candles(), records("no_trades"))
    assert not note.exists()  # a later answer replaces the note
