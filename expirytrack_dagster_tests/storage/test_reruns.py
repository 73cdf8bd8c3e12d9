"""Re-running a complete partition spends nothing and writes nothing: 0 candle requests, the
candle tables untouched, the database file size stable, the landing zone one compacted file."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from expirytrack_dagster.collection import fetch_status
from expirytrack_dagster.ops.tables import table_checksums
from expirytrack_dagster.storage.io_manager import StagedCandles, publish_partition
from expirytrack_dagster.storage.landing import COMPACTED_NAME, CandleLanding, DayRecord
from expirytrack_dagster_tests.pipeline import Pipeline, stock_pipeline, watch_underlying

EXPIRY = date(2025, 8, 28)
BLOCK = 262_144


@pytest.fixture(autouse=True)
def settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return watch_underlying(tmp_path, monkeypatch)


@pytest.fixture
def stock(tmp_path: Path):
    with stock_pipeline(tmp_path) as p:
        yield p


def candle_tables(database: Path) -> dict:
    with duckdb.connect(str(database), read_only=True) as db:
        sums = table_checksums(db)
    return {name: sums[name] for name in ("candles", "candle_fetch_status")}


def test_five_reruns_of_a_complete_partition_publish_nothing(stock: Pipeline) -> None:
    key = stock.partition("RELIANCE", EXPIRY)
    first = stock.materialize(key)
    meta = first.asset_materializations_for_node("candles")[0].metadata
    assert meta["published"].value == "new rows"
    landing = CandleLanding(stock.collection.landing_dir, "1minute")
    assert [p.name for p in landing.files(key)] == [COMPACTED_NAME]
    stored = candle_tables(stock.database)
    size = stock.database.stat().st_size
    stock.sandbox.reset_stats()
    sizes = []
    for _ in range(5):
        result = stock.materialize(key)
        meta = result.asset_materializations_for_node("candles")[0].metadata
        assert meta["published"].value == "unchanged since the last run: nothing written"
        assert meta["dagster/row_count"].value == stored["candles"][0]
        sizes.append(stock.database.stat().st_size)
    assert stock.candle_requests() == 0
    assert candle_tables(stock.database) == stored
    # Only the small expiries/contracts rows are rewritten (expiries records when it was checked):
    # at most one DuckDB block (256 KB) more, and no growth from run to run. `make bench` shows
    # the change on a demo-sized partition (well under 1 %).
    assert max(sizes) - size <= max(0.01 * size, BLOCK), (size, sizes)
    assert sizes[-1] <= max(sizes[:2]), sizes


def test_replacing_a_partition_again_and_again_reuses_the_space(tmp_path: Path) -> None:
    """Rows really replaced (each publish re-fetched): the checkpoint frees the old blocks."""
    landing = CandleLanding(tmp_path / "landing", "1minute")
    database = tmp_path / "db.duckdb"
    key = "NIFTY_2025-08-28"
    contracts = [f"NSE_FO|{n}|28-08-2025" for n in range(40000, 40040)]
    days = [date(2025, 8, 26), date(2025, 8, 27), date(2025, 8, 28)]
    stamps = pd.concat(
        pd.Series(pd.date_range(f"{d} 09:15", periods=375, freq="1min", tz="Asia/Kolkata"))
        for d in days
    ).to_numpy()
    sizes = []
    for run in range(6):
        at = datetime(2025, 8, 29, 10, run, tzinfo=UTC)
        for n, contract in enumerate(contracts):
            prices = 100.0 + n + (pd.Series(range(len(stamps))) % 23) * 0.05
            frame = pd.DataFrame(
                {
                    "timestamp": stamps,
                    "open": prices,
                    "high": prices + 0.5,
                    "low": prices - 0.5,
                    "close": prices,
                    "volume": 75,
                    "open_interest": 1000 + n,
                }
            )
            records = dict.fromkeys(days, DayRecord("complete", 30, None, at))
            landing.save(key, contract, frame, records)
        status, files = fetch_status(landing, key, contracts, days[0], days[-1])
        publish_partition(database, StagedCandles(key, tuple(files), status, {}))
        sizes.append(database.stat().st_size)
    assert candle_tables(database)["candles"][0] == len(contracts) * len(stamps)
    # After the first replacement the file holds old and new rows' blocks once; from then on
    # every replacement reuses the blocks the last one freed.
    assert max(sizes[2:]) <= sizes[1] * 1.01, sizes
