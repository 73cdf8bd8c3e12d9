"""continuous_futures on real collected futures: stitched rows, roll gap detection, the check."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
from dagster import materialize

from expirytrack_dagster.assets.research import continuous_futures
from expirytrack_dagster.checks.research_checks import no_gaps_at_rolls
from expirytrack_dagster.research.continuous import RollRule, stitch
from expirytrack_dagster.research.settings import ResearchSettings
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster_tests.pipeline import ASSETS, Pipeline
from expirytrack_dagster_tests.research.assets_pipeline import (
    AUGUST,
    COLLECT_CHECKS,
    SEPTEMBER,
    nifty_pipeline,
    resources,
    run,
)

WHOLE_WINDOW = {"max_span_days": {"1minute": 3650}}


def _continuous(p: Pipeline, research: ResearchSettings | None = None):
    return materialize(
        [continuous_futures, no_gaps_at_rolls],
        instance=p.instance,
        resources=resources(p, research),
        raise_on_error=False,
    )


def _stored(p: Pipeline) -> pd.DataFrame:
    series = p.query_frame('SELECT * FROM continuous_futures ORDER BY "timestamp"')
    for column in ("expiry", "session_date"):
        series[column] = pd.to_datetime(series[column]).dt.date
    return series


def test_two_monthly_futures_stitched_and_the_roll_gap_found(tmp_path: Path) -> None:
    with nifty_pipeline(tmp_path, contract_types=("FUT",), **WHOLE_WINDOW) as p:
        keys = [p.partition("NIFTY", expiry) for expiry in (AUGUST, SEPTEMBER)]
        for key in keys:
            assert run(p, key, selection=[*ASSETS, *COLLECT_CHECKS]).success

        # One month of lookback: September's future is collected from Mon 1 Sep, so Fri 29
        # Aug (after August's expiry) has no front month: a gap at the roll, found by the check.
        result = _continuous(p)
        (evaluation,) = result.get_asset_check_evaluations()
        assert not evaluation.passed
        assert evaluation.metadata["rolls_with_gaps"].value == 1
        series = _stored(p)
        by_day = series.groupby("session_date")["expiry"].nunique()
        assert (by_day == 1).all()  # each session from one contract
        days = series.groupby("expiry")["session_date"].agg(["min", "max"])
        assert days.loc[AUGUST, "max"] == AUGUST
        assert days.loc[SEPTEMBER, "min"] == date(2025, 9, 1)
        futures = p.query_frame(
            "SELECT k.underlying_symbol, c.partition_key, c.expired_instrument_key, k.expiry, "
            'c."timestamp", c.open, c.high, c.low, c.close, c.volume, c.open_interest '
            "FROM candles c JOIN contracts k USING (partition_key, expired_instrument_key)"
        )
        expected = stitch(futures, RollRule())
        pd.testing.assert_series_equal(
            series["adj_close"], expected["adj_close"].reset_index(drop=True), check_names=False
        )
        assert (series.loc[series["expiry"] == SEPTEMBER, "adjustment"] == 0).all()
        august = series[series["expiry"] == AUGUST]
        gap = august["adjustment"].iloc[0]
        assert (august["adj_close"] - august["close"]).round(9).eq(round(gap, 9)).all()

        # Two months of lookback for September: the series is whole, the check passes, and a
        # roll two sessions before expiry moves August's last two sessions to September.
        longer = CollectionSettings(**{**p.collection.model_dump(), "lookback_months": 2})
        assert run(p, keys[1], selection=[*ASSETS, *COLLECT_CHECKS], collection=longer).success
        assert _continuous(p).get_asset_check_evaluations()[0].passed
        early = _continuous(p, ResearchSettings(roll_sessions_before=2))
        assert early.get_asset_check_evaluations()[0].passed
        series = _stored(p)
        days = series.groupby("expiry")["session_date"].agg(["min", "max"])
        assert days.loc[AUGUST, "max"] == date(2025, 8, 25)  # 26 Aug, (27 a holiday), 28 Aug
        assert days.loc[SEPTEMBER, "min"] == date(2025, 8, 26)
