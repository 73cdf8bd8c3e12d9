"""Whatever the API does with a long range, the stored partition equals the sandbox's ground truth.

Each test collects a real partition through Dagster against the sandbox playing one range
behaviour, then compares every stored candle with the market model's own candles (computed
without HTTP, span limits or the client's parser): nothing lost, nothing duplicated, and the
status table says what really happened.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from expirytrack_dagster.checks import ALL_CHECKS
from expirytrack_dagster.sandbox import TRUTH_COLUMNS
from expirytrack_dagster.upstox.windows import span_days
from expirytrack_dagster_tests.collection.conftest import MONTHLY, TINY, TODAY, WEEKLY
from expirytrack_dagster_tests.pipeline import ASSETS, Pipeline, pipeline, sandbox_config

COLUMNS = list(TRUTH_COLUMNS)

BEHAVIOURS = {
    "serves-whole-window": ({"1minute": 3650}, "error"),
    "refuses-past-30-days": ({"1minute": 30}, "error"),
    "keeps-most-recent-20": ({"1minute": 20}, "keep_recent"),
    "keeps-earliest-20": ({"1minute": 20}, "keep_earliest"),
}


def stored(p: Pipeline, key: str) -> pd.DataFrame:
    frame = p.query_frame(
        f"SELECT {', '.join(COLUMNS)} FROM candles WHERE partition_key = ? "
        "ORDER BY expired_instrument_key, timestamp",
        [key],
    )
    frame["timestamp"] = frame["timestamp"].dt.tz_convert("Asia/Kolkata")
    return frame


def assert_equals_truth(p: Pipeline, key: str, expiry: date, start: date) -> pd.DataFrame:
    truth = p.sandbox.truth_candles("TINY", expiry, "1minute", start, expiry)
    got = stored(p, key)
    assert not got.duplicated(["expired_instrument_key", "timestamp"]).any()
    assert len(got) == len(truth) > 0
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), truth[COLUMNS].reset_index(drop=True), check_dtype=False
    )
    status = p.query_frame(
        "SELECT expired_instrument_key, trading_date, status, candle_count "
        "FROM candle_fetch_status WHERE partition_key = ?",
        [key],
    )
    assert set(status["status"]) <= {"complete", "no_trades"}
    per_day = (
        truth.assign(trading_date=truth["timestamp"].dt.date)
        .groupby(["expired_instrument_key", "trading_date"])
        .size()
    )
    for row in status.itertuples():
        day = pd.Timestamp(row.trading_date).date()
        expected = int(per_day.get((row.expired_instrument_key, day), 0))
        assert row.candle_count == expected
        assert row.status == ("complete" if expected else "no_trades")
    return status


@pytest.mark.parametrize("behaviour", list(BEHAVIOURS))
@pytest.mark.parametrize("expiry", [MONTHLY, WEEKLY], ids=["monthly", "weekly"])
def test_no_candle_lost_or_duplicated_whatever_the_range_behaviour(
    tmp_path: Path, behaviour: str, expiry: date
) -> None:
    spans, mode = BEHAVIOURS[behaviour]
    config = sandbox_config(
        seed=4, today=TODAY, extra_profiles=(TINY,), max_span_days=spans, range_behaviour=mode
    )
    with pipeline(tmp_path, config) as p:
        key = p.partition("TINY", expiry)
        result = p.materialize(key, selection=[*ASSETS, *ALL_CHECKS])
        assert result.success
        start = p.collection.lookback_start(expiry)
        assert_equals_truth(p, key, expiry, start)
        meta = result.asset_materializations_for_node("candles")[0].metadata
        assert meta["request_span_verified"].value is True
        limit = min(spans["1minute"], span_days(start, expiry))
        assert meta["request_span_days"].value <= limit
        # The fewest requests per contract the API allows, met.
        windows = -(-span_days(start, expiry) // limit)
        contracts = meta["contracts"].value
        assert meta["candle_requests_minimum"].value <= contracts * windows
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks["fetch_outcomes"] and checks["silent_option_days"]
        # A re-run has nothing left to ask for.
        before = p.candle_requests()
        again = p.materialize(key)
        assert again.success and p.candle_requests() == before
