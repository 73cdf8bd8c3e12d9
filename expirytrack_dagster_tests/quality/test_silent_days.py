"""Silent option days: the underlying traded, no near-money option did — a collection defect."""

from __future__ import annotations

import pandas as pd
import pytest

from expirytrack_dagster.quality import check_fetch_outcomes, check_silent_option_days, day_status
from expirytrack_dagster_tests.quality.synthetic import synthetic_partition


def _silence(candles: pd.DataFrame, contracts: pd.DataFrame, day_index: int) -> pd.DataFrame:
    """``candles`` with every option's candles of the ``day_index``-th session removed."""
    options = contracts.loc[contracts["instrument_type"] != "FUT", "expired_instrument_key"]
    stamps = pd.to_datetime(candles["timestamp"], utc=True).dt.tz_convert("Asia/Kolkata")
    day = sorted(stamps.dt.date.unique())[day_index]
    drop = candles["expired_instrument_key"].isin(options) & (stamps.dt.date == day)
    return candles.loc[~drop.to_numpy()]


@pytest.mark.parametrize("with_future", [True, False], ids=["monthly", "weekly"])
def test_a_clean_partition_has_no_silent_day(with_future: bool) -> None:
    candles, contracts, fetch, scope = synthetic_partition(
        with_future=with_future, sessions=3, strikes=6
    )
    result = check_silent_option_days(day_status(candles, contracts, fetch, scope))
    assert result.passed
    assert result.counts["days_judged"] == 3 and result.counts["silent_days"] == 0


@pytest.mark.parametrize("with_future", [True, False], ids=["monthly", "weekly"])
def test_a_day_every_option_is_silent_fails_even_if_recorded_as_no_trades(
    with_future: bool,
) -> None:
    candles, contracts, fetch, scope = synthetic_partition(
        with_future=with_future, sessions=4, strikes=6
    )
    candles = _silence(candles, contracts, 2)
    # What the old client recorded for a day a cut answer lost: "no trades", all outcomes final.
    stamps = pd.to_datetime(candles["timestamp"], utc=True).dt.tz_convert("Asia/Kolkata")
    per = candles.assign(d=stamps.dt.date).groupby(["expired_instrument_key", "d"]).size()
    fetch = fetch.assign(
        candle_count=[
            int(per.get((k, d), 0))
            for k, d in zip(fetch["expired_instrument_key"], fetch["trading_date"], strict=True)
        ]
    )
    fetch["status"] = ["complete" if n else "no_trades" for n in fetch["candle_count"]]
    days = day_status(candles, contracts, fetch, scope)
    assert check_fetch_outcomes(days).passed  # the bookkeeping alone looks clean
    result = check_silent_option_days(days)
    assert not result.passed
    assert result.counts["silent_days"] == 1
    assert len(result.samples) == 1


def test_unconfirmed_days_are_not_final() -> None:
    candles, contracts, fetch, scope = synthetic_partition(sessions=2, strikes=3)
    fetch = fetch.assign(status="unconfirmed")
    result = check_fetch_outcomes(day_status(candles, contracts, fetch, scope))
    assert not result.passed
    assert result.counts["unconfirmed"] == len(fetch)
