"""`rebuild`: a damaged database is found before any request and rebuilt identical from the
landing zone with no API request (row counts and a checksum of every table)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from expirytrack_dagster.ops.rebuild import rebuild
from expirytrack_dagster.ops.tables import table_checksums
from expirytrack_dagster.storage.stores import StoreError, check_database
from expirytrack_dagster_tests.pipeline import Pipeline, stock_pipeline, watch_underlying

EXPIRY = date(2025, 8, 28)
BLOCK_SIZE = 262_144
HEADER_SIZE = 3 * 4096


@pytest.fixture(autouse=True)
def settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return watch_underlying(tmp_path, monkeypatch)


@pytest.fixture
def stock(tmp_path: Path):
    with stock_pipeline(tmp_path) as p:
        yield p


def checksums(database: Path) -> dict:
    with duckdb.connect(str(database), read_only=True) as db:
        return table_checksums(db)


def candle_only_block(database: Path) -> int:
    """A block of the file holding `candles` data and nothing of any other table."""
    with duckdb.connect(str(database), read_only=True) as db:
        tables = [r[0] for r in db.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        owners: dict[int, set[str]] = {}
        for table in tables:
            rows = db.execute(
                f"SELECT block_id FROM pragma_storage_info('{table}') WHERE block_id >= 0"
            ).fetchall()
            for (block,) in rows:
                owners.setdefault(block, set()).add(table)
    only = sorted(b for b, names in owners.items() if names == {"candles"})
    assert only, "the test partition should fill at least one block with candles alone"
    return only[len(only) // 2]


def test_a_damaged_database_is_rebuilt_identical_without_a_request(stock: Pipeline) -> None:
    key = stock.partition("RELIANCE", EXPIRY)
    assert stock.materialize(key).success
    before = checksums(stock.database)
    assert before["candles"][0] > 0 and before["contracts"][0] > 0

    block = candle_only_block(stock.database)
    with stock.database.open("r+b") as f:
        f.seek(HEADER_SIZE + block * BLOCK_SIZE + 1024)
        f.write(b"\x00\xff" * 4096)
    with pytest.raises(StoreError, match=r"is damaged .*expirytrack rebuild"):
        check_database(stock.database)

    stock.sandbox.reset_stats()
    report = rebuild(stock.collection)
    assert stock.sandbox.stats()["total"] == 0
    assert report.damaged_copy is not None and report.damaged_copy.exists()
    assert report.lost_tables == []
    assert set(report.copied_tables) >= {"expiries", "contracts"}
    assert report.partitions == {key: before["candles"][0]}
    assert checksums(stock.database) == before


def test_rebuilding_a_healthy_partition_changes_nothing(stock: Pipeline) -> None:
    key = stock.partition("RELIANCE", EXPIRY)
    assert stock.materialize(key).success
    before = checksums(stock.database)
    report = rebuild(stock.collection, [key])
    assert report.damaged_copy is None and report.partitions == {key: before["candles"][0]}
    assert checksums(stock.database) == before
    with pytest.raises(StoreError, match="nothing landed for RELIANCE_2025-09-25"):
        rebuild(stock.collection, ["RELIANCE_2025-09-25"])
