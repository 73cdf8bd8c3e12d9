"""Synthetic forward from put-call parity, and the ATM strike."""

from __future__ import annotations

import math

import pandas as pd

from expirytrack_dagster.research.forward import atm_strike, synthetic_forward


def legs(rows: list[tuple]) -> pd.DataFrame:
    """(strike, type, close, age_minutes) rows."""
    return pd.DataFrame(rows, columns=["strike", "option_type", "close", "age_minutes"])


def test_forward_is_the_median_of_parity_at_the_nearest_fresh_strikes() -> None:
    rate, tau = 0.065, 0.05
    growth = math.exp(rate * tau)
    chain = legs(
        [
            (24900, "CE", 160.0, 0), (24900, "PE", 55.0, 1),   # F = 24900 + g*105
            (25000, "CE", 100.0, 0), (25000, "PE", 96.0, 0),   # F = 25000 + g*4
            (25100, "CE", 58.0, 2), (25100, "PE", 150.0, 0),   # F = 25100 - g*92
            (25200, "CE", 30.0, 0), (25200, "PE", 230.0, 9),   # PE too old: not used
            (24800, "CE", 250.0, 0), (24800, "PE", 30.0, 0),   # 4th nearest by |C-P|: not used
        ]
    )  # fmt: skip
    expected = sorted([24900 + growth * 105, 25000 + growth * 4, 25100 - growth * 92])[1]
    assert synthetic_forward(chain, rate, tau, max_age_minutes=5) == expected


def test_forward_nearest_to_a_reference_level() -> None:
    # At r = 0 parity is C - P = F - K: three strikes agree on 24100, two stale-looking ones
    # (C = P) say 25000 and 25100; nearness to the reference picks the three that agree.
    chain = legs(
        [
            (24000, "CE", 150.0, 0), (24000, "PE", 50.0, 0),
            (24100, "CE", 90.0, 0), (24100, "PE", 90.0, 0),
            (24200, "CE", 40.0, 0), (24200, "PE", 140.0, 0),
            (25000, "CE", 5.0, 0), (25000, "PE", 5.0, 0),
            (25100, "CE", 4.0, 0), (25100, "PE", 4.0, 0),
        ]
    )  # fmt: skip
    assert synthetic_forward(chain, 0.0, 0.1, reference=24100.0) == 24100.0
    assert synthetic_forward(chain, 0.0, 0.1) == 25000.0  # by |C - P|: 24100, 25000, 25100


def test_no_forward_without_a_fresh_pair() -> None:
    chain = legs([(25000, "CE", 100.0, 6), (25000, "PE", 96.0, 0), (25100, "CE", 50.0, 0)])
    assert math.isnan(synthetic_forward(chain, 0.065, 0.05, max_age_minutes=5))
    assert math.isnan(synthetic_forward(legs([]), 0.065, 0.05))


def test_atm_strike_is_the_nearest_listed_ties_to_the_lower() -> None:
    strikes = [24900.0, 25000.0, 25100.0, 25000.0]
    assert atm_strike(strikes, 25040.0) == 25000.0
    assert atm_strike(strikes, 25060.0) == 25100.0
    assert atm_strike(strikes, 25050.0) == 25000.0  # tie
    assert atm_strike(strikes, 30000.0) == 25100.0
    assert math.isnan(atm_strike(strikes, math.nan))
