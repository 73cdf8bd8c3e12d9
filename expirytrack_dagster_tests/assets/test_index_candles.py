"""``index_candles`` against the sandbox: the underlying's own candles equal the model's, spent once."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dagster import AssetKey, materialize

from expirytrack_dagster.assets import candles, contracts, expiries, index_candles
from expirytrack_dagster.assets.index_candles import INDEX_SPAN_DAYS, day_coverage
from expirytrack_dagster.calendar import trading_days_between
from expirytrack_dagster.definitions import collect_expiry_job
from expirytrack_dagster.ops.tables import table_checksums
from expirytrack_dagster.sensors import new_expiry_sensor
from expirytrack_dagster.storage.database import connect
from expirytrack_dagster.upstox.windows import split_windows
from expirytrack_dagster_tests.assets.conftest import RELIANCE_KEY, TODAY
from expirytrack_dagster_tests.pipeline import (
    SMALL_NIFTY,
    SMALL_RELIANCE,
    Pipeline,
    column_types,
    pipeline,
    sandbox_config,
    stock_pipeline,
    with_reliance,
)

EXPIRY = date(2025, 8, 28)
WINDOW = (date(2025, 7, 28), EXPIRY)  # one month before expiry through expiry day
NIFTY_KEY = "NSE_INDEX|Nifty 50"
SELECTION = [expiries, index_candles]


def v3_requests(p: Pipeline) -> int:
    """Requests the sandbox answered for the V3 (active-instrument) candles."""
    return int(p.sandbox.stats()["by_kind"]["index_candles"])


def stored(p: Pipeline, key: str) -> pd.DataFrame:
    frame = p.query_frame(
        'SELECT underlying_key, "timestamp", open, high, low, close, volume FROM index_candles '
        'WHERE partition_key = ? ORDER BY "timestamp"',
        [key],
    )
    frame["timestamp"] = frame["timestamp"].dt.tz_convert("Asia/Kolkata").dt.as_unit("ns")
    return frame


def alone(p: Pipeline, key: str, upstox: dict | None = None, **kwargs: Any):
    """Materialise ``index_candles`` alone, its ``expiries`` loaded from the database."""
    kwargs.setdefault("raise_on_error", True)
    return materialize(
        SELECTION,
        selection=[index_candles],
        partition_key=key,
        instance=p.instance,
        resources=p.resources(**(upstox or {})),
        **kwargs,
    )


def step_failure(result) -> str:
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return str(failure.event_specific_data)


@pytest.fixture
def stock(tmp_path: Path):
    with stock_pipeline(tmp_path) as p:
        yield p


def test_lineage_job_and_sensor_selection() -> None:
    """expiries → index_candles, partitioned like candles; collected by the job and the sensor."""
    assert index_candles.keys == {AssetKey("index_candles")}
    assert index_candles.asset_deps == {AssetKey("index_candles"): {AssetKey("expiries")}}
    assert index_candles.partitions_def == next(iter(candles.specs)).partitions_def
    graph = [expiries, contracts, index_candles, candles]
    assert AssetKey("index_candles") in collect_expiry_job.selection.resolve(graph)
    assert AssetKey("index_candles") in new_expiry_sensor.asset_selection.resolve(graph)


def test_a_stock_partition_stores_the_truth_in_month_spans_and_a_rerun_spends_nothing(
    stock: Pipeline,
) -> None:
    key = stock.partition("RELIANCE", EXPIRY)
    result = stock.materialize(key, selection=SELECTION)
    truth = stock.sandbox.market.truth_index_candles(RELIANCE_KEY, *WINDOW)
    pd.testing.assert_frame_equal(stored(stock, key), truth, check_dtype=False)
    assert len(truth) == 375 * len(trading_days_between(*WINDOW))
    assert (truth["volume"] > 0).all()  # a share trades volume; an index does not
    assert column_types(stock.database, "index_candles") == {
        "partition_key": "VARCHAR",
        "underlying_key": "VARCHAR",
        "timestamp": "TIMESTAMP WITH TIME ZONE",
        "open": "DOUBLE",
        "high": "DOUBLE",
        "low": "DOUBLE",
        "close": "DOUBLE",
        "volume": "BIGINT",
    }
    # 32 calendar days in spans of at most 28: two requests, each verified day by day.
    assert (WINDOW[1] - WINDOW[0]).days + 1 == 32 > INDEX_SPAN_DAYS
    assert v3_requests(stock) == 2
    meta = result.asset_materializations_for_node("index_candles")[0].metadata
    assert meta["api_requests"].value == 2 and meta["minutes_missing"].value == 0
    assert meta["days_complete"].value == meta["trading_days"].value == len(truth) // 375
    assert stock.instance.get_materialized_partitions(AssetKey("index_candles")) == {key}

    with connect(stock.database, read_only=True) as db:
        before = table_checksums(db)["index_candles"]
    again = alone(stock, key)
    assert v3_requests(stock) == 2  # no request: every day is stored complete
    meta = again.asset_materializations_for_node("index_candles")[0].metadata
    assert meta["published"].value.startswith("unchanged") and meta["api_requests"].value == 0
    with connect(stock.database, read_only=True) as db:
        assert table_checksums(db)["index_candles"] == before

    forced = alone(
        stock,
        key,
        run_config={"ops": {"index_candles": {"config": {"force_refetch": True}}}},
    )
    assert forced.success and v3_requests(stock) == 4
    pd.testing.assert_frame_equal(stored(stock, key), truth, check_dtype=False)


def test_a_weekly_index_partition_has_the_index_with_zero_volume(tmp_path: Path) -> None:
    config = sandbox_config(seed=21, today=TODAY, extra_profiles=(SMALL_NIFTY,))
    with pipeline(tmp_path, config, lookback_months=1) as p:
        weekly = min(d for d in p.sandbox.market.expiries(NIFTY_KEY) if d.month == 8)
        assert not p.sandbox.market.is_monthly(NIFTY_KEY, weekly)
        key = p.partition("NIFTY", weekly)
        assert p.materialize(key, selection=SELECTION, max_span_days=10).success
        window = (p.collection.lookback_start(weekly), weekly)
        truth = p.sandbox.market.truth_index_candles(NIFTY_KEY, *window)
        pd.testing.assert_frame_equal(stored(p, key), truth, check_dtype=False)
        assert (truth["volume"] == 0).all() and not truth.empty
        # upstox.max_span_days=10 caps the spans: one request per 10-day window
        assert v3_requests(p) == len(split_windows(*window, 10)) >= 3


def test_days_the_api_does_not_serve_fail_the_partition_loudly_after_storing_the_rest(
    tmp_path: Path,
) -> None:
    """A window reaching back before January 2022, where Upstox has no 1-minute data."""
    config = sandbox_config(seed=21, today=date(2022, 6, 1), extra_profiles=(SMALL_RELIANCE,))
    expiry = date(2022, 1, 27)
    with pipeline(tmp_path, config, lookback_months=1, underlyings=with_reliance()) as p:
        key = p.partition("RELIANCE", expiry)
        failed = p.materialize(key, selection=SELECTION, raise_on_error=False)
        assert not failed.success
        text = step_failure(failed)
        december = [d for d in trading_days_between(date(2021, 12, 27), expiry) if d.year == 2021]
        assert f"{len(december)} of " in text and str(december[0]) in text
        assert "from 2022-01-01 on" in text and "max_span_days" in text
        assert key not in p.instance.get_materialized_partitions(AssetKey("index_candles"))
        # January was answered and verified: stored, equal to the truth.
        truth = p.sandbox.market.truth_index_candles(RELIANCE_KEY, date(2022, 1, 1), expiry)
        pd.testing.assert_frame_equal(stored(p, key), truth, check_dtype=False)

        requests = v3_requests(p)
        again = alone(p, key, raise_on_error=False)
        assert not again.success
        assert v3_requests(p) == requests + 1  # only the December days are asked again


def test_alone_it_needs_expiries_and_a_revoked_token_stops_it_naming_the_fix(
    stock: Pipeline,
) -> None:
    key = stock.partition("RELIANCE", EXPIRY)
    uncollected = alone(stock, key, raise_on_error=False)
    assert "materialise `expiries` first" in step_failure(uncollected)
    assert v3_requests(stock) == 0  # refused before any request

    assert stock.materialize(key, selection=[expiries]).success
    no_token = {
        "source": "upstox",
        "base_url": stock.sandbox.base_url,
        "access_token": None,
        "credentials_dir": str(stock.root / "no-credentials"),
    }
    refused = alone(stock, key, upstox=no_token, raise_on_error=False)
    assert "no Upstox access token" in step_failure(refused)
    assert "Nothing was written" in step_failure(refused) and v3_requests(stock) == 0

    token = stock.sandbox.access_token
    stock.sandbox.remove_token(token)
    failed = alone(stock, key, raise_on_error=False)
    text = step_failure(failed)
    assert "TokenExpired" in text and "expirytrack login" in text and token not in text
    assert stock.query("SELECT count(*) FROM index_candles") == [(0,)]
    assert key not in stock.instance.get_materialized_partitions(AssetKey("index_candles"))


def test_day_coverage_needs_both_session_ends_and_counts_inner_gaps() -> None:
    def minutes(day: str, start: str, count: int, skip: tuple[int, ...] = ()) -> list:
        first = pd.Timestamp(f"{day} {start}", tz="Asia/Kolkata")
        return [first + pd.Timedelta(minutes=i) for i in range(count) if i not in skip]

    regular, short, muhurat = date(2025, 8, 1), date(2025, 8, 4), date(2025, 10, 21)
    stamps = pd.Series(
        minutes("2025-08-01", "09:15", 375, skip=(100, 101))  # complete, two minutes missing
        + minutes("2025-08-04", "09:15", 374)  # no 15:29 bar: not complete
        + minutes("2025-10-21", "13:45", 60)  # the one-hour Muhurat session
    ).dt.tz_convert("UTC")  # any time zone: coverage is judged in IST
    coverage = day_coverage(stamps, [regular, short, muhurat, date(2025, 8, 5)])
    assert coverage.complete == {regular, muhurat}
    assert coverage.minutes_missing == 2
    assert day_coverage(pd.Series([], dtype="datetime64[ns, UTC]"), [regular]).complete == set()
