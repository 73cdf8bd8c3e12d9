"""Pruning a collected partition's landing: only when verified, and a re-run then spends nothing.

A real RELIANCE partition collected from the sandbox into a real DuckDB file and landing zone.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey

from expirytrack_dagster.ops.delete import delete_partition, plan_deletion
from expirytrack_dagster.ops.doctor import check_storage
from expirytrack_dagster.ops.prune import apply_retention, prune_partition, verify_partition
from expirytrack_dagster.ops.rebuild import rebuild
from expirytrack_dagster.ops.tables import table_checksums
from expirytrack_dagster.project_settings import load_settings
from expirytrack_dagster.settings import CollectionSettings, SettingsError
from expirytrack_dagster.storage.database import connect
from expirytrack_dagster.storage.landing import PRUNED_NAME, CandleLanding, DayRecord
from expirytrack_dagster_tests.ops.test_rebuild import BLOCK_SIZE, HEADER_SIZE, candle_only_block
from expirytrack_dagster_tests.pipeline import Pipeline, stock_pipeline, watch_underlying

EXPIRY = date(2025, 8, 28)
PUBLISHED = ("candles", "candle_fetch_status")


@pytest.fixture(autouse=True)
def settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return watch_underlying(tmp_path, monkeypatch)


@pytest.fixture
def stock(tmp_path: Path):
    with stock_pipeline(tmp_path) as p:
        yield p


def checksums(database: Path) -> dict:
    with duckdb.connect(str(database), read_only=True) as db:
        found = table_checksums(db)
    return {table: found[table] for table in PUBLISHED}


def failure_messages(result) -> str:
    return "\n".join(
        str(event.event_specific_data.error) for event in result.all_events if event.is_failure
    )


def test_a_verified_partition_is_pruned_and_then_costs_nothing(stock: Pipeline) -> None:
    key = stock.partition("RELIANCE", EXPIRY)
    assert stock.materialize(key).success
    landing = CandleLanding(stock.collection.landing_dir, stock.collection.interval)
    before = checksums(stock.database)
    storage_before = check_storage(stock.database, Path(stock.collection.landing_dir))
    assert "0 of 1 landed partitions pruned" in storage_before.detail

    check = verify_partition(stock.collection, key)
    assert check.prunable, check.reason
    assert check.candle_rows == before["candles"][0] > 0
    record = prune_partition(stock.collection, key, check)
    assert record.candle_rows == check.candle_rows and record.checksum == check.checksum
    assert [p.name for p in landing.partition_dir(key).iterdir()] == [PRUNED_NAME]
    assert checksums(stock.database) == before

    storage = check_storage(stock.database, Path(stock.collection.landing_dir))
    assert "1 of 1 landed partitions pruned" in storage.detail
    per_candle = [float(f.detail.split(" bytes per candle")[0]) for f in (storage_before, storage)]
    assert per_candle[1] < per_candle[0]

    # A re-run succeeds with nothing to do; a forced re-fetch is refused. Neither asks for a
    # candle, and both tables stay as they were (expiries and contracts are listed again: not
    # candle requests).
    stock.sandbox.reset_stats()
    rerun = stock.materialize(key)
    assert rerun.success
    (meta,) = [m.metadata for m in rerun.asset_materializations_for_node("candles")][:1]
    assert meta["landing"].value == "pruned"
    forced = {"ops": {"candles": {"config": {"force_refetch": True}}}}
    rerun = stock.materialize(key, run_config=forced, raise_on_error=False)
    assert not rerun.success
    assert "cannot collect it: its landing files were pruned" in failure_messages(rerun)
    assert stock.candle_requests() == 0
    assert checksums(stock.database) == before

    # Rebuild leaves it alone and says so; it is not verified (or pruned) twice.
    report = rebuild(stock.collection)
    assert report.pruned == [key] and report.partitions == {}
    assert checksums(stock.database) == before
    assert verify_partition(stock.collection, key).reason == "already pruned"

    # A damaged database: the pruned partition's candles went with it, and rebuild says so.
    block = candle_only_block(stock.database)
    with stock.database.open("r+b") as f:
        f.seek(HEADER_SIZE + block * BLOCK_SIZE + 1024)
        f.write(b"\x00\xff" * 4096)
    report = rebuild(stock.collection)
    assert report.damaged_copy is not None and report.pruned == [key]
    assert report.partitions == {} and checksums(stock.database)["candles"][0] == 0


def test_only_a_complete_partition_identical_in_the_database_may_be_pruned(
    stock: Pipeline,
) -> None:
    key = stock.partition("RELIANCE", EXPIRY)
    assert stock.materialize(key).success
    collection = stock.collection

    def reason() -> str:
        check = verify_partition(collection, key)
        assert not check.prunable
        with pytest.raises(ValueError, match="not pruned"):
            prune_partition(collection, key)
        assert not CandleLanding(collection.landing_dir, collection.interval).is_pruned(key)
        return check.reason or ""

    # One candle altered in the database: the checksum tells.
    with connect(stock.database) as db:
        db.execute(
            "UPDATE candles SET close = close * 2 WHERE partition_key = ? AND rowid = "
            "(SELECT min(rowid) FROM candles WHERE partition_key = ?)",
            [key, key],
        )
    assert "the database's candles differ from the landing's" in reason()
    with connect(stock.database) as db:
        db.execute(
            "UPDATE candles SET close = close / 2 WHERE partition_key = ? AND rowid = "
            "(SELECT min(rowid) FROM candles WHERE partition_key = ?)",
            [key, key],
        )
    assert verify_partition(collection, key).prunable

    # One candle missing from the database.
    with connect(stock.database) as db:
        row = db.execute(
            "SELECT * FROM candles WHERE partition_key = ? ORDER BY rowid LIMIT 1", [key]
        ).fetchall()[0]
        db.execute(
            "DELETE FROM candles WHERE partition_key = ? AND rowid = "
            "(SELECT min(rowid) FROM candles WHERE partition_key = ?)",
            [key, key],
        )
    assert "the database does not hold what landed" in reason()
    with connect(stock.database) as db:
        db.execute(f"INSERT INTO candles VALUES ({', '.join('?' * len(row))})", list(row))
    assert verify_partition(collection, key).prunable

    # A day of one contract recorded failed in the landing: not final, so not complete.
    landing = CandleLanding(collection.landing_dir, collection.interval)
    contract = landing.contract_keys(key)[0]
    landed = landing.load(key, contract, [])
    assert landed is not None
    day, frame = min(landed.days), landing.candles(landed)
    failed = {**landed.days, day: DayRecord("failed", None, "candles: 503", landed.fetched_at)}
    landing.save(key, contract, frame, failed, landed.duplicates_collapsed)
    assert "1 contract-days are not final" in reason()
    landing.save(key, contract, frame, landed.days, landed.duplicates_collapsed)
    assert verify_partition(collection, key).prunable  # the same content, in its own file again

    # A blocking rule cannot pass without the expiry's row.
    with connect(stock.database) as db:
        expiry_row = db.execute("SELECT * FROM expiries WHERE partition_key = ?", [key]).fetchall()
        db.execute("DELETE FROM expiries WHERE partition_key = ?", [key])
    assert reason().startswith("blocking checks fail: (cannot be judged: no expiries row")
    with connect(stock.database) as db:
        db.execute(
            f"INSERT INTO expiries VALUES ({', '.join('?' * len(expiry_row[0]))})",
            list(expiry_row[0]),
        )
    assert verify_partition(collection, key).prunable


def test_the_setting_prunes_after_publishing_only_when_asked(stock: Pipeline) -> None:
    key = stock.partition("RELIANCE", EXPIRY)
    assert stock.materialize(key).success
    assert apply_retention(stock.collection, key) is None  # default: keep
    landing = CandleLanding(stock.collection.landing_dir, stock.collection.interval)
    assert not landing.is_pruned(key)

    pruning = stock.collection.model_copy(update={"landing_retention": "prune_verified"})
    outcome = apply_retention(pruning, key)
    assert outcome is not None and outcome.startswith("pruned: ")
    assert landing.is_pruned(key)
    assert apply_retention(pruning, key) == "kept: already pruned"

    # What the refusal advises: `expirytrack delete` the partition, then it collects again.
    plan = plan_deletion(
        key,
        database=stock.database,
        landing_dir=Path(stock.collection.landing_dir),
        instance=stock.instance,
        asset_keys=[AssetKey("candles")],
    )
    assert plan.landing_files == 1  # the day records
    delete_partition(plan, database=stock.database, instance=stock.instance)
    stock.sandbox.reset_stats()
    assert stock.materialize(stock.partition("RELIANCE", EXPIRY)).success
    assert stock.candle_requests() > 0 and not landing.is_pruned(key)
    assert verify_partition(stock.collection, key).prunable


def test_with_the_setting_on_the_candles_step_prunes_after_it_publishes(stock: Pipeline) -> None:
    fields = {name: getattr(stock.collection, name) for name in CollectionSettings.model_fields}
    fields["landing_retention"] = "prune_verified"
    pruning = replace(stock, collection=CollectionSettings(**fields))
    key = pruning.partition("RELIANCE", EXPIRY)
    first = pruning.materialize(key)
    meta = first.asset_materializations_for_node("candles")[0].metadata
    assert meta["landing_retention"].value.startswith("pruned: ")
    landing = CandleLanding(stock.collection.landing_dir, stock.collection.interval)
    assert landing.is_pruned(key)
    before = checksums(stock.database)
    assert before["candles"][0] > 0

    pruning.sandbox.reset_stats()
    again = pruning.materialize(key)
    assert again.success and pruning.candle_requests() == 0
    assert checksums(stock.database) == before


def test_the_setting_is_checked_where_it_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be one of keep, prune_verified"):
        CollectionSettings(landing_retention="prune")
    settings = tmp_path / "retention.yaml"
    settings.write_text("collection:\n  landing_retention: prune\n")
    with pytest.raises(SettingsError) as raised:
        load_settings(env={"EXPIRYTRACK_CONFIG": str(settings)})
    assert str(raised.value) == (
        f"{settings}: collection.landing_retention = 'prune': must be one of keep, prune_verified"
    )
    settings.write_text("collection:\n  landing_retention: prune_verified\n")
    loaded = load_settings(env={"EXPIRYTRACK_CONFIG": str(settings)})
    assert loaded.collection.landing_retention == "prune_verified"
