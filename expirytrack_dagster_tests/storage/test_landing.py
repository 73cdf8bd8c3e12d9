"""The landing zone: whole files or none, outcomes kept with the data, failures noted."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from expirytrack_dagster.storage.landing import CANDLE_FILE_COLUMNS, CandleLanding
from expirytrack_dagster.upstox.models import empty_candles
from expirytrack_dagster_tests.storage.test_io_manager import candles_frame

KEY = "NIFTY_2025-08-28"
CONTRACT = "NSE_FO|64103|28-08-2025"


def test_save_is_atomic_and_records_its_window(tmp_path: Path) -> None:
    landing = CandleLanding(tmp_path, "1minute")
    landed = landing.save(
        KEY,
        CONTRACT,
        candles_frame("2025-08-01 09:15", 375, 100.0),
        date(2025, 5, 28),
        date(2025, 8, 28),
    )
    assert landed.path.name == "NSE_FO__64103__28-08-2025.parquet"
    assert [p.name for p in landed.path.parent.iterdir()] == [landed.path.name]  # no temp files
    again = landing.landed(KEY, CONTRACT)
    assert (again.from_date, again.to_date, again.candle_count) == (
        date(2025, 5, 28),
        date(2025, 8, 28),
        375,
    )
    frame = pd.read_parquet(landed.path)
    assert list(frame.columns) == list(CANDLE_FILE_COLUMNS)
    assert set(frame["partition_key"]) == {KEY} and set(frame["expired_instrument_key"]) == {
        CONTRACT
    }
    assert str(frame["timestamp"].dt.tz) == "Asia/Kolkata"


def test_no_trades_lands_as_an_empty_file(tmp_path: Path) -> None:
    landing = CandleLanding(tmp_path, "1minute")
    landing.save(KEY, CONTRACT, empty_candles(), date(2025, 5, 28), date(2025, 8, 28))
    assert landing.landed(KEY, CONTRACT).candle_count == 0
    assert landing.failure(KEY, CONTRACT) is None


def test_failure_note_is_replaced_by_a_later_success(tmp_path: Path) -> None:
    landing = CandleLanding(tmp_path, "1minute")
    landing.save_failure(KEY, CONTRACT, "HTTP 500 UDAPI100500: boom")
    assert landing.landed(KEY, CONTRACT) is None
    assert landing.failure(KEY, CONTRACT).error == "HTTP 500 UDAPI100500: boom"
    landing.save(KEY, CONTRACT, empty_candles(), date(2025, 5, 28), date(2025, 8, 28))
    assert landing.failure(KEY, CONTRACT) is None
