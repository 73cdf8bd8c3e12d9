"""Re-running a complete partition spends nothing and writes nothing: 0 candle requests, the
candle tables untouched, the database file size stable, the landing zone one compacted file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from expirytrack_dagster.ops.tables import table_checksums
from expirytrack_dagster.storage.landing import COMPACTED_NAME, CandleLanding
from expirytrack_dagster_tests.pipeline import Pipeline, pipeline, sandbox_config

EXPIRY = date(2025, 8, 28)
RELIANCE_KEY = "NSE_EQ|INE002A01018"


@pytest.fixture(autouse=True)
def settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "expirytrack.yaml"
    path.write_text(f'underlyings:\n  - symbol: RELIANCE\n    instrument_key: "{RELIANCE_KEY}"\n')
    monkeypatch.setenv("EXPIRYTRACK_CONFIG", str(path))
    return path


@pytest.fixture
def stock(tmp_path: Path):
    with pipeline(
        tmp_path, sandbox_config(seed=21, today=date(2025, 10, 1)), lookback_months=1
    ) as p:
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
    assert max(abs(s - size) for s in sizes) <= 0.01 * size, (size, sizes)


def test_a_forced_refetch_replaces_the_rows_and_reclaims_their_space(stock: Pipeline) -> None:
    key = stock.partition("RELIANCE", EXPIRY)
    stock.materialize(key)
    stored = candle_tables(stock.database)
    sizes = []
    for _ in range(3):
        result = stock.materialize(
            key, run_config={"ops": {"candles": {"config": {"force_refetch": True}}}}
        )
        meta = result.asset_materializations_for_node("candles")[0].metadata
        assert meta["published"].value == "replaced the stored rows"
        sizes.append(stock.database.stat().st_size)
    assert candle_tables(stock.database)["candles"] == stored["candles"]
    # The old rows' blocks are handed back and reused: the file stops growing.
    assert sizes[2] <= sizes[1] * 1.01, sizes
