"""The research checks' rules by hand (the Dagster wiring is run in the research asset tests)."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd

from expirytrack_dagster.checks.research_checks import (
    RESEARCH_CHECKS,
    iv_out_of_bounds,
    parity_residuals,
    parity_tolerance,
    roll_gaps,
    unlisted_max_pain,
)
from expirytrack_dagster.research.expiry_time import years_to_expiry

EXPIRY = date(2025, 8, 28)


def test_iv_bounds_ignore_undefined_ivs_and_catch_both_ends() -> None:
    greeks = pd.DataFrame({"iv": [np.nan, 0.005, 0.01, 0.2, 5.0, 5.5]})
    assert iv_out_of_bounds(greeks)["iv"].tolist() == [0.005, 5.5]


def test_parity_residual_is_what_parity_leaves_at_the_atm_strike() -> None:
    as_of = pd.Timestamp("2025-08-14 10:29", tz="Asia/Kolkata")
    tau = float(years_to_expiry(pd.Series([as_of]), EXPIRY)[0])
    forward, strike, put = 24_510.0, 24_500.0, 100.0
    exact_call = put + math.exp(-0.065 * tau) * (forward - strike)
    metrics = pd.DataFrame(
        {
            "as_of": [as_of, as_of, as_of],
            "forward": [forward, forward, forward],
            "atm_strike": [strike, strike, strike],
            "atm_ce": [exact_call, exact_call + 30.0, np.nan],  # the third has no call
            "atm_pe": [put, put, put],
        }
    )
    checked = parity_residuals(metrics, 0.065, pd.Timestamp(EXPIRY))
    assert len(checked) == 2
    assert abs(checked["residual"].iloc[0]) < 1e-9
    assert math.isclose(checked["residual"].iloc[1], 30.0, abs_tol=1e-9)
    assert checked["tolerance"].iloc[0] == 0.001 * forward  # 24.51 > 4 ticks
    assert float(parity_tolerance(pd.Series([100.0])).iloc[0]) == 0.2  # 4 ticks of 0.05


def test_max_pain_must_be_a_listed_strike() -> None:
    metrics = pd.DataFrame({"as_of": [1, 2, 3], "max_pain": [24_500.0, 24_525.0, np.nan]})
    bad = unlisted_max_pain(metrics, pd.Series([24_400.0, 24_500.0, 24_600.0]))
    assert bad["max_pain"].tolist() == [24_525.0]


def test_roll_gaps_count_missing_sessions_between_segments() -> None:
    series = pd.DataFrame(
        {
            "underlying_symbol": "NIFTY",
            "expired_instrument_key": ["AUG", "AUG", "SEP", "SEP", "OCT"],
            "expiry": [
                date(2025, 8, 28),
                date(2025, 8, 28),
                date(2025, 9, 30),
                date(2025, 9, 30),
                date(2025, 10, 28),
            ],
            # AUG ends Thu 28 Aug, SEP starts Mon 1 Sep: Fri 29 Aug is missing.
            # SEP ends Tue 30 Sep, OCT starts Wed 1 Oct: nothing missing.
            "session_date": [
                date(2025, 8, 26),
                date(2025, 8, 28),
                date(2025, 9, 1),
                date(2025, 9, 30),
                date(2025, 10, 1),
            ],
            "adjustment": [15.0, 15.0, 5.0, 5.0, 0.0],
        }
    )
    gaps = roll_gaps(series)
    assert gaps[["from_contract", "to_contract", "missing_sessions"]].values.tolist() == [
        ["AUG", "SEP", 1]
    ]
    assert gaps["gap"].tolist() == [10.0]


def test_four_checks_are_registered() -> None:
    names = {spec.name for check in RESEARCH_CHECKS for spec in check.check_specs}
    assert names == {"iv_within_bounds", "parity_at_atm", "max_pain_listed", "no_gaps_at_rolls"}
