"""The coverage rules on the hand-made NIFTY chain: the future, near-money and far strikes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from expirytrack_dagster.quality import (
    QualitySettings,
    check_far_strike_coverage,
    check_fetch_outcomes,
    check_future_boundary_days,
    check_future_coverage,
    check_near_money_coverage,
    coverage_histogram,
)
from expirytrack_dagster_tests.quality.chain import (
    CE,
    DAYS,
    FAR,
    FUT,
    MON,
    SCOPE,
    SETTINGS,
    THU,
    TUE,
    Slot,
    days_of,
    row,
)


def test_clean_partition_passes_every_coverage_rule() -> None:
    days = days_of()
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


def test_future_missing_a_day_is_an_error() -> None:
    days = days_of(minutes={(FUT, TUE): []})
    assert row(days, FUT, TUE)["status"] == "no_trades"
    assert row(days, FUT, TUE)["label"] == "gap"
    result = check_future_coverage(days, SCOPE, SETTINGS)
    assert not result.passed
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
