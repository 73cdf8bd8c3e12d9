"""Completeness rules on a small hand-made partition: NIFTY 28 Aug 2025, window 25-28 Aug.

27 Aug 2025 was a holiday (Ganesh Chaturthi), so the window has three trading days. Five strikes
around a future that closes at 24905 each day: with ``near_money_strikes=1`` the at-the-money
24900 and its neighbours 24850 and 24950 are near the money, 24800 and 25000 are far.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import numpy as np
import pandas as pd
import pytest

from expirytrack_dagster.quality import (
    PartitionScope,
    QualitySettings,
    check_far_strike_coverage,
    check_fetch_outcomes,
    check_future_boundary_days,
    check_future_coverage,
    check_near_money_coverage,
    day_status,
)
from expirytrack_dagster.quality.completeness import DAY_STATUS_COLUMNS, coverage_histogram
from expirytrack_dagster_tests.quality.frames import (
    EXPIRY,
    contract,
    contracts,
    fetch_status,
    key,
    session_candles,
)

DAYS = [date(2025, 8, 25), date(2025, 8, 26), date(2025, 8, 28)]
MON, TUE, THU = DAYS
SCOPE = PartitionScope(expiry=EXPIRY, monthly=True, window_start=MON, window_end=EXPIRY)
SETTINGS = QualitySettings(near_money_strikes=1)
FORWARD = 24905.0
STRIKES = [24800, 24850, 24900, 24950, 25000]

FUT = key(1)
CE = {strike: key(10 + i) for i, strike in enumerate(STRIKES)}
PE = {strike: key(20 + i) for i, strike in enumerate(STRIKES)}
FAR = [CE[24800], PE[24800], CE[25000], PE[25000]]

MONTHLY = contracts(
    [
        contract(1, "FUT"),
        *(contract(10 + i, "CE", s) for i, s in enumerate(STRIKES)),
        *(contract(20 + i, "PE", s) for i, s in enumerate(STRIKES)),
    ]
)
WEEKLY = MONTHLY[MONTHLY["instrument_type"] != "FUT"].assign(weekly=True)
FULL = range(375)

Slot = tuple[str, date]


def closing_price(instrument_key: str) -> float:
    """Closes consistent with put-call parity around FORWARD, so a weekly finds the same ATM."""
    for strike in STRIKES:
        if instrument_key == CE[strike]:
            return max(FORWARD - strike, 0.0) + 10.0
        if instrument_key == PE[strike]:
            return max(strike - FORWARD, 0.0) + 10.0
    return FORWARD


def partition(
    minutes: Mapping[Slot, Sequence[int]] | None = None,
    outcomes: Mapping[Slot, tuple[str, int, str | None] | None] | None = None,
    listed: pd.DataFrame = MONTHLY,
    interval_step: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Candles and fetch outcomes: every contract trades every minute unless ``minutes`` says
    otherwise; each outcome matches what is stored unless ``outcomes`` overrides it (None
    drops the row)."""
    minutes = minutes or {}
    outcomes = outcomes or {}
    frames, rows = [], []
    for instrument_key in listed["expired_instrument_key"]:
        for day in DAYS:
            traded = minutes.get((instrument_key, day), range(0, 375, interval_step))
            price = closing_price(instrument_key)
            frames.append(session_candles(instrument_key, day, price, traded))
            outcome = outcomes.get(
                (instrument_key, day),
                ("complete", len(traded), None) if len(traded) else ("no_trades", 0, None),
            )
            if outcome is not None:
                rows.append((instrument_key, day, *outcome))
    return pd.concat(frames, ignore_index=True), fetch_status(rows)


def days_of(
    minutes: Mapping[Slot, Sequence[int]] | None = None,
    outcomes: Mapping[Slot, tuple[str, int, str | None] | None] | None = None,
    listed: pd.DataFrame = MONTHLY,
    scope: PartitionScope = SCOPE,
    settings: QualitySettings = SETTINGS,
) -> pd.DataFrame:
    candles, fetched = partition(minutes, outcomes, listed)
    return day_status(candles, listed, fetched, scope, settings)


def row(days: pd.DataFrame, instrument_key: str, day: date) -> pd.Series:
    found = days[(days["expired_instrument_key"] == instrument_key) & (days["trading_date"] == day)]
    assert len(found) == 1
    return found.iloc[0]


def test_clean_partition_passes_everything() -> None:
    days = days_of()
    assert list(days.columns) == DAY_STATUS_COLUMNS
    assert len(days) == 11 * 3
    assert set(days["status"]) == {"complete"}
    assert set(days["label"]) == {"complete"}
    assert days["moneyness"].value_counts().to_dict() == {"far": 12, "near": 18, "future": 3}
    assert set(days.loc[days["moneyness"] == "near", "strike_price"]) == {24850, 24900, 24950}
    assert (days["coverage"] == 1.0).all()
    assert (days["expected_candles"] == 375).all()

    fetch = check_fetch_outcomes(days, SETTINGS)
    assert fetch.passed
    assert fetch.counts == {
        "contracts": 11,
        "contract_days": 33,
        "missing_outcomes": 0,
        "failed": 0,
        "unconfirmed": 0,
        "count_mismatches": 0,
        "contracts_affected": 0,
    }
    future = check_future_coverage(days, SCOPE, SETTINGS)
    assert future.passed
    assert future.counts == {
        "futures": 1,
        "future_days": 3,
        "front_month_days": 3,
        "front_month_days_below": 0,
        "early_days_below": 0,
    }
    boundary = check_future_boundary_days(days, SCOPE, SETTINGS)
    assert boundary.passed
    assert boundary.counts == {
        "futures": 1,
        "first_day_missing": 0,
        "last_day_missing": 0,
        "futures_without_trades": 0,
    }
    near = check_near_money_coverage(days, SETTINGS)
    assert near.passed
    assert near.counts == {
        "near_money_days": 18,
        "near_money_days_below": 0,
        "near_money_days_under_threshold": 0,
        "thin_market_days": 0,
        "contracts_below": 0,
        "unreferenced_option_days": 0,
    }
    far = check_far_strike_coverage(days, SETTINGS)
    assert far.passed
    assert far.counts["far_days"] == 12
    assert far.counts["coverage_99_100pct"] == 12


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


def test_failed_contract_is_an_error_with_its_message() -> None:
    slot = (CE[24900], TUE)
    days = days_of(minutes={slot: []}, outcomes={slot: ("failed", 0, "UDAPI100500: server error")})
    assert row(days, *slot)["status"] == "failed"
    assert row(days, *slot)["label"] == "failed"
    result = check_fetch_outcomes(days, SETTINGS)
    assert not result.passed
    assert result.severity == "ERROR"
    assert result.counts["failed"] == 1
    assert result.counts["missing_outcomes"] == 0
    assert result.counts["contracts_affected"] == 1
    assert result.worst is not None
    assert result.worst.iloc[0]["expired_instrument_key"] == CE[24900]
    assert result.worst.iloc[0]["first_error"] == "UDAPI100500: server error"
    assert result.worst.iloc[0]["lost_days"] == 1
    assert "UDAPI100500" in result.worst_markdown()
    # A failed day is the fetch rule's error, not a near-money shortfall on top.
    assert check_near_money_coverage(days, SETTINGS).counts["near_money_days"] == 17


def test_missing_outcome_and_stored_count_mismatch_are_errors() -> None:
    days = days_of(
        minutes={(CE[24800], TUE): range(300)},
        outcomes={(PE[24800], MON): None, (CE[24800], TUE): ("complete", 375, None)},
    )
    assert row(days, PE[24800], MON)["status"] == "missing"
    assert row(days, PE[24800], MON)["label"] == "missing"
    result = check_fetch_outcomes(days, SETTINGS)
    assert not result.passed
    assert result.counts["missing_outcomes"] == 1
    assert result.counts["count_mismatches"] == 1
    assert result.counts["failed"] == 0
    assert result.counts["contracts_affected"] == 2
    assert result.metrics["lost_contract_days_pct"] == pytest.approx(2 / 33 * 100)


def test_best_outcome_wins_when_a_retry_succeeded() -> None:
    candles, fetched = partition()
    retry = fetched.iloc[[0]].assign(status="failed", candle_count=0, error="timeout")
    fetched = pd.concat([retry, fetched], ignore_index=True)
    days = day_status(candles, MONTHLY, fetched, SCOPE, SETTINGS)
    assert check_fetch_outcomes(days, SETTINGS).passed


def test_future_missing_a_day_is_an_error() -> None:
    days = days_of(minutes={(FUT, TUE): []})
    assert row(days, FUT, TUE)["status"] == "no_trades"
    assert row(days, FUT, TUE)["label"] == "gap"
    result = check_future_coverage(days, SCOPE, SETTINGS)
    assert not result.passed
    assert result.severity == "ERROR"
    assert result.counts["front_month_days_below"] == 1
    assert result.metrics["min_coverage_pct"] == 0.0
    assert result.samples is not None
    assert result.samples.iloc[0]["trading_date"] == TUE
    assert check_fetch_outcomes(days, SETTINGS).passed  # the API answered: nothing was lost
    assert check_future_boundary_days(days, SCOPE, SETTINGS).passed  # a middle day


def test_future_missing_its_last_day_fails_the_boundary_rule() -> None:
    days = days_of(minutes={(FUT, THU): []})
    result = check_future_boundary_days(days, SCOPE, SETTINGS)
    assert not result.passed
    assert result.counts["first_day_missing"] == 0
    assert result.counts["last_day_missing"] == 1
    assert result.samples is not None
    assert result.samples.iloc[0]["trading_date"] == THU


def test_future_listed_after_the_window_opened_is_not_missing_its_first_day() -> None:
    days = days_of(minutes={(FUT, MON): []})
    assert row(days, FUT, MON)["label"] == "before_first_trade"
    assert check_future_boundary_days(days, SCOPE, SETTINGS).passed
    future = check_future_coverage(days, SCOPE, SETTINGS)
    assert future.passed
    assert future.counts["future_days"] == 2


def test_future_whose_first_day_failed_is_missing_it() -> None:
    days = days_of(minutes={(FUT, MON): []}, outcomes={(FUT, MON): ("failed", 0, "429")})
    result = check_future_boundary_days(days, SCOPE, SETTINGS)
    assert result.counts["first_day_missing"] == 1
    assert result.counts["last_day_missing"] == 0
    assert not result.passed


def test_future_that_never_traded_is_an_error() -> None:
    days = days_of(minutes={(FUT, day): [] for day in DAYS})
    boundary = check_future_boundary_days(days, SCOPE, SETTINGS)
    assert boundary.counts["futures_without_trades"] == 1
    assert not boundary.passed
    assert check_future_coverage(days, SCOPE, SETTINGS).counts["front_month_days_below"] == 3


@pytest.mark.parametrize(("traded", "status"), [(372, "complete"), (370, "partial")])
def test_coverage_threshold_decides_complete_or_partial(traded: int, status: str) -> None:
    days = days_of(minutes={(FUT, MON): range(traded)})
    assert row(days, FUT, MON)["status"] == status
    assert check_future_coverage(days, SCOPE, SETTINGS).passed == (status == "complete")


def test_future_gap_before_its_front_month_is_reported_not_failed() -> None:
    days = days_of(minutes={(FUT, MON): range(100)})
    lenient = QualitySettings(near_money_strikes=1, future_front_month_days=1)
    result = check_future_coverage(days, SCOPE, lenient)
    assert result.passed
    assert result.counts["front_month_days"] == 1  # only 28 Aug is within a day of expiry
    assert result.counts["early_days_below"] == 1
    strict = QualitySettings(near_money_strikes=1, future_front_month_days=None)
    assert not check_future_coverage(days, SCOPE, strict).passed


def test_sparse_far_strikes_are_labelled_sparse_not_failed() -> None:
    sparse = range(0, 375, 10)  # 38 of 375 minutes: 10.1 %
    minutes: dict[Slot, Sequence[int]] = {(k, d): sparse for k in FAR for d in DAYS}
    minutes[(CE[25000], TUE)] = []  # traded on Monday, nothing on Tuesday
    days = days_of(minutes=minutes)
    far_days = days[days["moneyness"] == "far"]
    assert far_days["label"].value_counts().to_dict() == {"sparse": 12}
    assert far_days["status"].value_counts().to_dict() == {"partial": 11, "no_trades": 1}
    assert check_fetch_outcomes(days, SETTINGS).passed
    assert check_near_money_coverage(days, SETTINGS).passed

    result = check_far_strike_coverage(days, SETTINGS)
    assert result.passed
    assert result.severity == "WARN"
    assert result.counts == {
        "far_days": 12,
        "sparse_days": 12,
        "far_contracts": 4,
        "coverage_0_10pct": 1,
        "coverage_10_25pct": 11,
        "coverage_25_50pct": 0,
        "coverage_50_75pct": 0,
        "coverage_75_90pct": 0,
        "coverage_90_99pct": 0,
        "coverage_99_100pct": 0,
    }
    assert result.metrics["coverage_p0"] == 0.0
    assert result.metrics["coverage_p50"] == pytest.approx(38 / 375 * 100)
    assert result.worst is not None
    assert result.worst.iloc[0]["expired_instrument_key"] == CE[25000]


def test_near_money_shortfall_against_full_peers_is_a_warning() -> None:
    # 150 of 375 minutes while every other near-money option traded all day: a lost chunk.
    days = days_of(minutes={(CE[24950], THU): range(150)})
    assert row(days, CE[24950], THU)["label"] == "gap"
    assert row(days, CE[24950], THU)["status"] == "partial"
    result = check_near_money_coverage(days, SETTINGS)
    assert not result.passed
    assert result.severity == "WARN"
    assert result.counts["near_money_days_below"] == 1
    assert result.counts["near_money_days_under_threshold"] == 1
    assert result.counts["contracts_below"] == 1
    assert result.worst is not None
    assert result.worst.iloc[0]["expired_instrument_key"] == CE[24950]
    assert result.worst.iloc[0]["min_coverage"] == pytest.approx(0.4)


def test_small_shortfall_within_peer_range_is_not_flagged() -> None:
    # 300 of 375 minutes (80 %) is under the 99 % threshold but more than half of what the
    # peers covered: an option going quiet for a while, not lost data.
    days = days_of(minutes={(CE[24950], THU): range(300)})
    result = check_near_money_coverage(days, SETTINGS)
    assert result.passed
    assert result.counts["near_money_days_under_threshold"] == 1
    assert result.counts["near_money_days_below"] == 0


def test_a_uniformly_thin_market_does_not_cry_wolf() -> None:
    # Every near-money option trades a third of the minutes (a thin underlying): the market.
    near = sorted(set(days_of().query("moneyness == 'near'")["expired_instrument_key"]))
    thin = {(key, day): range(0, 375, 3) for key in near for day in DAYS}
    result = check_near_money_coverage(days_of(minutes=thin), SETTINGS)
    assert result.passed
    assert result.counts["near_money_days_under_threshold"] == len(near) * 3
    assert result.counts["near_money_days_below"] == 0
    assert result.counts["thin_market_days"] == 3


def test_an_option_far_below_liquid_peers_is_flagged_even_with_peer_fraction_one() -> None:
    # With the peer test switched off (fraction 1), every judged shortfall counts.
    settings = QualitySettings(near_money_strikes=1, near_money_peer_fraction=1.0)
    days = days_of(minutes={(CE[24950], THU): range(300)}, settings=settings)
    result = check_near_money_coverage(days, settings)
    assert not result.passed and result.counts["near_money_days_below"] == 1


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


def test_coverage_histogram_bands_include_their_lower_edge() -> None:
    coverage = np.array([0.0, 0.1, 0.5, 0.989, 0.99, 1.0])
    assert coverage_histogram(coverage, QualitySettings()) == {
        "coverage_0_10pct": 1,
        "coverage_10_25pct": 1,
        "coverage_25_50pct": 0,
        "coverage_50_75pct": 1,
        "coverage_75_90pct": 0,
        "coverage_90_99pct": 1,
        "coverage_99_100pct": 2,
    }
