"""The per-(contract, trading day) grid on the hand-made NIFTY chain of chain.py."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from expirytrack_dagster.quality import (
    PartitionScope,
    QualitySettings,
    check_future_boundary_days,
    check_future_coverage,
    check_near_money_coverage,
    day_status,
)
from expirytrack_dagster.quality.contract_days import DAY_STATUS_COLUMNS
from expirytrack_dagster_tests.quality.chain import (
    DAYS,
    FORWARD,
    FUT,
    MON,
    MONTHLY,
    SCOPE,
    SETTINGS,
    THU,
    TUE,
    WEEKLY,
    days_of,
    partition,
    row,
)
from expirytrack_dagster_tests.quality.frames import (
    EXPIRY,
    contract,
    contracts,
    fetch_status,
    key,
    session_candles,
)


def test_clean_partition_grid_is_complete_everywhere() -> None:
    days = days_of()
    assert list(days.columns) == DAY_STATUS_COLUMNS
    assert len(days) == 11 * 3
    assert set(days["status"]) == {"complete"}
    assert set(days["label"]) == {"complete"}
    assert days["moneyness"].value_counts().to_dict() == {"far": 12, "near": 18, "future": 3}
    assert set(days.loc[days["moneyness"] == "near", "strike_price"]) == {24850, 24900, 24950}
    assert (days["coverage"] == 1.0).all()
    assert (days["expected_candles"] == 375).all()


def test_default_near_money_is_five_strikes_either_side() -> None:
    strikes = np.arange(24000.0, 26000.0, 50.0)
    listed = contracts(
        [contract(1, "FUT")] + [contract(100 + i, "CE", s) for i, s in enumerate(strikes)]
    )
    candles = pd.concat(
        [session_candles(key(1), day, FORWARD, range(3)) for day in DAYS], ignore_index=True
    )
    days = day_status(candles, listed, fetch_status([]), SCOPE)
    near = days.loc[days["moneyness"] == "near", "strike_price"].unique()
    assert sorted(near) == [24650 + 50 * i for i in range(11)]  # ATM 24900 ± 5 strikes


@pytest.mark.parametrize(("traded", "status"), [(372, "complete"), (370, "partial")])
def test_coverage_threshold_decides_complete_or_partial(traded: int, status: str) -> None:
    days = days_of(minutes={(FUT, MON): range(traded)})
    assert row(days, FUT, MON)["status"] == status
    assert check_future_coverage(days, SCOPE, SETTINGS).passed == (status == "complete")


def test_near_money_band_setting() -> None:
    band = QualitySettings(near_money_band=0.002)  # ±49.8 around 24905
    days = days_of(settings=band)
    near = days.loc[days["moneyness"] == "near", "strike_price"]
    assert sorted(near.unique()) == [24900, 24950]
    assert len(near) == 12


def test_weekly_expiry_finds_the_money_by_put_call_parity() -> None:
    weekly = PartitionScope(expiry=EXPIRY, monthly=False, window_start=MON, window_end=EXPIRY)
    days = days_of(listed=WEEKLY, scope=weekly)
    assert days["moneyness"].value_counts().to_dict() == {"far": 12, "near": 18}
    assert set(days.loc[days["moneyness"] == "near", "strike_price"]) == {24850, 24900, 24950}
    future = check_future_coverage(days, weekly, SETTINGS)
    assert future.passed
    assert future.counts["futures"] == 0
    boundary = check_future_boundary_days(days, weekly, SETTINGS)
    assert boundary.passed
    assert boundary.counts["futures"] == 0


def test_day_without_a_reference_price_leaves_moneyness_unknown() -> None:
    weekly = PartitionScope(expiry=EXPIRY, monthly=False, window_start=MON, window_end=EXPIRY)
    quiet = {(k, TUE): [] for k in WEEKLY["expired_instrument_key"]}
    days = days_of(minutes=quiet, listed=WEEKLY, scope=weekly)
    tuesday = days[days["trading_date"] == TUE]
    assert set(tuesday["moneyness"]) == {"unknown"}
    assert set(tuesday["label"]) == {"sparse"}
    result = check_near_money_coverage(days, SETTINGS)
    assert result.counts["unreferenced_option_days"] == 10
    assert result.counts["near_money_days"] == 12


def test_five_minute_candles_are_judged_against_five_minute_sessions() -> None:
    scope = PartitionScope(
        expiry=EXPIRY, monthly=True, window_start=MON, window_end=EXPIRY, interval="5minute"
    )
    candles, fetched = partition(interval_step=5)
    days = day_status(candles, MONTHLY, fetched, scope, SETTINGS)
    assert (days["expected_candles"] == 75).all()
    assert set(days["status"]) == {"complete"}


def test_daily_candles_count_one_per_session() -> None:
    scope = PartitionScope(
        expiry=EXPIRY, monthly=True, window_start=MON, window_end=EXPIRY, interval="day"
    )
    midnight = pd.Timestamp("00:00").time()
    candles = pd.DataFrame(
        {
            "expired_instrument_key": FUT,
            "timestamp": [pd.Timestamp.combine(day, midnight) for day in (MON, THU)],
            "open": FORWARD,
            "high": FORWARD,
            "low": FORWARD,
            "close": FORWARD,
            "volume": 1,
            "open_interest": 1,
        }
    )
    candles["timestamp"] = candles["timestamp"].dt.tz_localize("Asia/Kolkata")
    listed = MONTHLY.iloc[[0]]
    outcomes = fetch_status([(FUT, d, "complete", 1, None) for d in (MON, THU)])
    outcomes = pd.concat([outcomes, fetch_status([(FUT, TUE, "no_trades", 0, None)])])
    days = day_status(candles, listed, outcomes, scope, SETTINGS)
    assert list(days["expected_candles"]) == [1, 1, 1]
    assert list(days["status"]) == ["complete", "no_trades", "complete"]
    assert check_future_coverage(days, scope, SETTINGS).counts["front_month_days_below"] == 1


def test_window_ends_at_expiry_and_skips_holidays() -> None:
    late = PartitionScope(
        expiry=EXPIRY, monthly=True, window_start=MON, window_end=date(2025, 8, 29)
    )
    days = days_of(scope=late)
    assert sorted(days["trading_date"].unique()) == DAYS
