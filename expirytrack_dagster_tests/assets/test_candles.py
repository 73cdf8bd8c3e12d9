"""The partitioned pipeline against the sandbox: typed rows, budget spent once, safe failures."""

from __future__ import annotations

import threading
import time
from datetime import date
from pathlib import Path

import pytest
from dagster import AssetKey, materialize

from expirytrack_dagster.assets import candles, contracts
from expirytrack_dagster.assets.candles import CANDLE_FETCH_STATUS, CANDLES
from expirytrack_dagster.calendar import trading_days_between
from expirytrack_dagster.collection import pending_days
from expirytrack_dagster.sandbox import FaultConfig
from expirytrack_dagster.storage.landing import CandleLanding
from expirytrack_dagster_tests.assets.conftest import RELIANCE_KEY, TODAY
from expirytrack_dagster_tests.pipeline import (
    ASSETS,
    TINY_NIFTY,
    Pipeline,
    column_types,
    pipeline,
    sandbox_config,
    stock_pipeline,
)

EXPIRY = date(2025, 8, 28)
WINDOW = (date(2025, 7, 28), EXPIRY)  # one month before expiry through expiry day


@pytest.fixture
def stock(tmp_path: Path):
    with stock_pipeline(tmp_path) as p:
        yield p


def expected_candles(p: Pipeline, keys: list[str]) -> int:
    return sum(len(p.sandbox.market.candles(k, "1minute", *WINDOW)) for k in keys)


def test_one_step_declares_both_candle_tables_and_they_go_together() -> None:
    """The lineage the UI shows: contracts → (candles, candle_fetch_status), one step."""
    assert candles.keys == {CANDLES, CANDLE_FETCH_STATUS}
    assert candles.asset_deps == {
        CANDLES: {AssetKey("contracts")},
        CANDLE_FETCH_STATUS: {AssetKey("contracts")},
    }
    assert {spec.partitions_def for spec in candles.specs} == {contracts.partitions_def}
    assert candles.node_def.name == "candles"  # run config stays {"ops": {"candles": ...}}
    # Written in one transaction, so never materialised one without the other: a selection
    # naming one of them is refused (DagsterInvalidSubsetError) rather than half-run.
    assert not candles.can_subset


def test_partition_stores_typed_rows_equal_to_what_the_sandbox_served(stock: Pipeline) -> None:
    key = stock.partition("RELIANCE", EXPIRY)
    result = stock.materialize(key)
    assert result.success

    served = stock.sandbox.market.contracts(RELIANCE_KEY, EXPIRY)
    keys = [c["instrument_key"] for c in served]
    stored = stock.query(
        "SELECT expired_instrument_key FROM contracts WHERE partition_key = ?", [key]
    )
    assert sorted(k for (k,) in stored) == sorted(keys)
    assert stock.query("SELECT count(*) FROM candles")[0][0] == expected_candles(stock, keys)
    (traded,) = stock.query("SELECT count(DISTINCT expired_instrument_key) FROM candles")[0]
    assert 0 < traded <= len(keys)

    days = trading_days_between(*WINDOW)
    status = dict(stock.query("SELECT status, count(*) FROM candle_fetch_status GROUP BY 1"))
    assert sum(status.values()) == len(keys) * len(days)
    assert status["complete"] > 0 and status["no_trades"] > 0 and "failed" not in status

    types = column_types(stock.database, "candles")
    assert types["timestamp"] == "TIMESTAMP WITH TIME ZONE"
    assert {types[c] for c in ("open", "high", "low", "close")} == {"DOUBLE"}
    assert types["volume"] == types["open_interest"] == "BIGINT"
    assert column_types(stock.database, "contracts")["expiry"] == "DATE"
    assert column_types(stock.database, "candle_fetch_status")["trading_date"] == "DATE"
    first = stock.query('SELECT min("timestamp")::VARCHAR FROM candles')[0][0]
    assert first.endswith("+05:30") and "09:15:00" in first

    future = next(c for c in served if c["instrument_type"] == "FUT")["instrument_key"]
    per_day = stock.query(
        'SELECT count(*) FROM candles WHERE expired_instrument_key = ? GROUP BY "timestamp"::DATE',
        [future],
    )
    assert {n for (n,) in per_day} == {375}
    candle_meta, status_meta = (
        m.metadata for m in result.asset_materializations_for_node("candles")
    )
    assert candle_meta["contracts_fetched"].value == len(keys)
    assert "sandbox" in candle_meta["data_source"].value
    assert candle_meta["dagster/row_count"].value == expected_candles(stock, keys)
    assert status_meta["dagster/row_count"].value == sum(status.values())
    assert status_meta["contract_days_complete"].value == status["complete"]
    for asset_key in (CANDLES, CANDLE_FETCH_STATUS):
        assert stock.instance.get_materialized_partitions(asset_key) == {key}


def test_rerun_of_a_complete_partition_makes_zero_candle_requests_and_records_it(
    stock: Pipeline,
) -> None:
    key = stock.partition("RELIANCE", EXPIRY)
    stock.materialize(key)
    rows = stock.query("SELECT count(*) FROM candles")[0][0]
    before = stock.candle_requests()
    result = stock.materialize(key)
    assert stock.candle_requests() == before
    assert stock.query("SELECT count(*) FROM candles")[0][0] == rows
    meta = result.asset_materializations_for_node("candles")[0].metadata
    assert meta["contracts_fetched"].value == 0 and meta["api_requests"].value == 0
    # Each candles run records its API usage; the re-run spent nothing and says so.
    usage = stock.query(
        "SELECT partition_key, candle_requests, candles_fetched, latency_p50_ms "
        "FROM api_usage ORDER BY recorded_at"
    )
    assert len(usage) == 2 and {r[0] for r in usage} == {key}
    first, again = usage
    assert first[1] == stock.candle_requests() and first[2] > 0 and first[3] > 0
    assert again[1] == 0 and again[2] == 0

    forced = stock.materialize(
        key, run_config={"ops": {"candles": {"config": {"force_refetch": True}}}}
    )
    assert forced.success and stock.candle_requests() > before
    assert stock.query("SELECT count(*) FROM candles")[0][0] == rows


def test_weekly_expiry_without_a_future_is_a_real_empty_answer(tmp_path: Path) -> None:
    with pipeline(
        tmp_path,
        sandbox_config(seed=21, today=TODAY, extra_profiles=(TINY_NIFTY,)),  # 10 contracts
        lookback_months=1,
        contract_types=["FUT", "CE"],
    ) as p:
        weekly = min(d for d in p.sandbox.market.expiries("NSE_INDEX|Nifty 50") if d.month == 8)
        key = p.partition("NIFTY", weekly)
        assert p.materialize(key).success
        types = dict(p.query("SELECT instrument_type, count(*) FROM contracts GROUP BY 1"))
        expiry_row = p.query("SELECT is_monthly FROM expiries WHERE partition_key = ?", [key])
    assert set(types) == {"CE"}  # no FUT on a weekly expiry, and no PE: not configured
    assert expiry_row == [(False,)]


def test_failure_mid_partition_resumes_without_refetch_and_no_partial_rows(stock: Pipeline) -> None:
    key = stock.partition("RELIANCE", EXPIRY)
    served = stock.sandbox.market.contracts(RELIANCE_KEY, EXPIRY)
    # One contract at a time, in stored order (future, calls, puts): every put's candle request
    # fails, and eight failures in a row open the circuit, which stops the run midway.
    stock.collection = stock.collection.model_copy(update={"max_in_flight": 1})
    puts = frozenset(c["instrument_key"] for c in served if c["instrument_type"] == "PE")
    stock.sandbox.set_faults(FaultConfig(fail_keys=puts))
    failed = stock.materialize(key, raise_on_error=False, max_attempts=2, circuit_min_failing_s=0.0)
    assert not failed.success
    failure = next(e for e in failed.all_events if e.event_type_value == "STEP_FAILURE")
    assert "run stopped by CircuitOpen" in str(failure.event_specific_data)
    for asset_key in candles.keys:
        assert key not in stock.instance.get_materialized_partitions(asset_key)
    landing = CandleLanding(stock.collection.landing_dir, "1minute")
    days = trading_days_between(*WINDOW)
    keys = [c["instrument_key"] for c in served]
    final = []  # contracts whose every day landed final before the outage
    landed_candles = 0
    for k in keys:
        landed = landing.load(key, k, days)
        assert landed is not None  # every contract has a record of what happened to it
        landed_candles += landed.candle_count
        if not pending_days(landed, days):
            final.append(k)
    assert final, "some contracts should have landed before the outage"
    assert len(final) < len(keys), "the outage should have left some contracts unfinished"
    # The outage opened the circuit: the step failed, but what landed is published, and every
    # day it left says so with the reason.
    assert stock.query("SELECT count(*) FROM candles")[0][0] == landed_candles > 0
    errors = dict(
        stock.query(
            "SELECT error, count(*) FROM candle_fetch_status WHERE status = 'failed' GROUP BY 1"
        )
    )
    assert sum(errors.values()) > 0 and "never fetched" not in errors
    assert any(e.startswith("run stopped by CircuitOpen") for e in errors)
    assert stock.query("SELECT count(*) FROM candle_fetch_status") == [(len(keys) * len(days),)]

    stock.sandbox.set_faults(FaultConfig())
    result = stock.materialize(key)
    assert result.success
    # Only contracts with days still to fetch were asked for, at most two windows each.
    meta = result.asset_materializations_for_node("candles")[0].metadata
    assert meta["contracts_reused"].value == len(final)
    assert meta["contract_window_requests"].value <= 2 * (len(served) - len(final))
    assert stock.query("SELECT count(*) FROM candles")[0][0] == expected_candles(stock, keys)


def test_failed_refetch_keeps_the_complete_partition(stock: Pipeline) -> None:
    key = stock.partition("RELIANCE", EXPIRY)
    stock.materialize(key)
    snapshot = stock.query('SELECT count(*), sum(volume), max("timestamp") FROM candles')
    stock.sandbox.set_faults(FaultConfig(server_error=1.0, only_paths=("historical-candle",)))
    forced = stock.materialize(
        key,
        run_config={"ops": {"candles": {"config": {"force_refetch": True}}}},
        raise_on_error=False,
        max_attempts=2,
    )
    assert not forced.success
    assert stock.query('SELECT count(*), sum(volume), max("timestamp") FROM candles') == snapshot


def test_one_failing_contract_is_recorded_failed_and_retried_next_run(stock: Pipeline) -> None:
    key = stock.partition("RELIANCE", EXPIRY)
    served = stock.sandbox.market.contracts(RELIANCE_KEY, EXPIRY)
    broken = next(c["instrument_key"] for c in served if c["instrument_type"] == "CE")
    stock.sandbox.set_faults(FaultConfig(fail_keys=frozenset({broken})))
    result = stock.materialize(key, max_attempts=2)
    assert result.success  # one bad contract does not sink the partition
    failed = stock.query(
        "SELECT expired_instrument_key, min(error) FROM candle_fetch_status WHERE status = 'failed'"
        " GROUP BY 1"
    )
    assert [k for k, _ in failed] == [broken] and "HTTP 500" in failed[0][1]
    meta = result.asset_materializations_for_node("candles")[0].metadata
    assert meta["contracts_failed"].value == 1

    stock.sandbox.set_faults(FaultConfig())
    before = stock.candle_requests()
    assert stock.materialize(key).success
    assert stock.candle_requests() - before <= 2  # only the failed contract's windows
    assert stock.query("SELECT count(*) FROM candle_fetch_status WHERE status = 'failed'") == [(0,)]


def test_expiry_not_listed_fails_clearly_and_keeps_data(stock: Pipeline) -> None:
    key = stock.partition("RELIANCE", date(2025, 8, 27))
    result = stock.materialize(key, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "does not list 2025-08-27 as an expiry of RELIANCE" in str(failure.event_specific_data)


@pytest.mark.parametrize(
    ("interval", "per_day"),
    [
        ("1minute", 375),
        ("3minute", 125),
        ("5minute", 75),
        ("15minute", 25),
        ("30minute", 13),
        ("day", 1),
    ],
)
def test_every_interval_works(tmp_path: Path, interval: str, per_day: int) -> None:
    with pipeline(
        tmp_path,
        sandbox_config(seed=21, today=TODAY),
        lookback_months=1,
        interval=interval,
        contract_types=["FUT"],
    ) as p:
        key = p.partition("RELIANCE", EXPIRY)
        assert p.materialize(key).success
        counts = p.query('SELECT count(*) FROM candles GROUP BY "timestamp"::DATE')
        intervals = p.query('SELECT DISTINCT "interval" FROM candles')
    assert {n for (n,) in counts} == {per_day}  # a full regular session, for the future
    assert len(counts) == len(trading_days_between(*WINDOW))
    assert intervals == [(interval,)]


def test_token_revoked_mid_run_fails_naming_the_fix_and_keeps_what_landed(stock: Pipeline) -> None:
    key = stock.partition("RELIANCE", EXPIRY)
    token = stock.sandbox.access_token

    def revoke() -> None:
        deadline = time.monotonic() + 60
        while stock.candle_requests() < 40 and time.monotonic() < deadline:
            time.sleep(0.005)
        stock.sandbox.remove_token(token)

    watcher = threading.Thread(target=revoke, daemon=True)
    watcher.start()
    failed = stock.materialize(key, raise_on_error=False)
    watcher.join()
    assert not failed.success
    failure = next(e for e in failed.all_events if e.event_type_value == "STEP_FAILURE")
    assert "TokenExpired" in str(failure.event_specific_data)
    assert "expirytrack login" in str(failure.event_specific_data)
    assert token not in str(failure.event_specific_data)
    # What landed is published, and the days the 401 left say why they are missing.
    assert stock.query("SELECT count(*) FROM candles")[0][0] > 0
    reasons = stock.query(
        "SELECT DISTINCT error FROM candle_fetch_status WHERE status = 'failed' "
        "AND error LIKE 'run stopped by TokenExpired%'"
    )
    assert reasons and "expirytrack login" in reasons[0][0] and token not in reasons[0][0]
    landing = CandleLanding(stock.collection.landing_dir, "1minute")
    days = trading_days_between(*WINDOW)
    served = stock.sandbox.market.contracts(RELIANCE_KEY, EXPIRY)
    landed = [
        c["instrument_key"]
        for c in served
        if not pending_days(landing.load(key, c["instrument_key"], days), days)
    ]
    assert landed

    stock.sandbox.add_token(token)  # a fresh login, as far as the sandbox is concerned
    result = stock.materialize(key)
    assert result.success
    meta = result.asset_materializations_for_node("candles")[0].metadata
    assert meta["contracts_reused"].value == len(landed)  # not fetched again


def test_an_asset_run_without_its_upstream_fails_and_marks_nothing(stock: Pipeline) -> None:
    """The UI path: Materialize… → `candles` (or `contracts`) alone on an uncollected partition."""
    key = stock.partition("RELIANCE", EXPIRY)
    for alone in (candles, contracts):
        result = materialize(
            ASSETS,
            selection=list(alone.keys),
            partition_key=key,
            instance=stock.instance,
            resources=stock.resources(),
            raise_on_error=False,
        )
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        text = str(failure.event_specific_data)
        assert "materialise" in text and "expirytrack backfill RELIANCE" in text
        for asset_key in alone.keys:
            assert key not in stock.instance.get_materialized_partitions(asset_key)
    assert stock.candle_requests() == 0
    has_table = stock.database.exists() and stock.query(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'candles'"
    ) == [(1,)]
    assert not has_table or stock.query("SELECT count(*) FROM candles") == [(0,)]
