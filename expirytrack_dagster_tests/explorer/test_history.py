"""research.history against the research API on the same collected partition."""

from __future__ import annotations

import math

import pandas as pd

from expirytrack_dagster import research
from expirytrack_dagster.research.history import expiry_life, oi_change_grid, session_legs
from expirytrack_dagster_tests.explorer.conftest import EXPIRY, Collected


def test_session_legs_and_life_match_the_api_at_each_close(collected: Collected) -> None:
    with research.open_database(collected.database) as db:
        legs = session_legs("NIFTY", EXPIRY, database=db)
        life = expiry_life("NIFTY", EXPIRY, legs=legs)
        assert len(life) >= 5
        last_day = life["day"].iloc[-1]
        at = f"{last_day} 15:29"
        chain = research.option_chain("NIFTY", EXPIRY, at, database=db)
        assert life["max_pain"].iloc[-1] == research.max_pain("NIFTY", EXPIRY, at, database=db)
        assert math.isclose(life["pcr_oi"].iloc[-1], chain.attrs["pcr_oi"], rel_tol=1e-12)
        today = legs[(legs["day"] == last_day) & (legs["option_type"] == "CE")]
        by_strike = today.set_index("strike")["oi"]
        expected = chain.set_index("strike")["CE_oi"].dropna()
        pd.testing.assert_series_equal(
            by_strike.loc[expected.index].astype(float), expected.astype(float), check_names=False
        )
        oi_change = today.set_index("strike")["oi_change"].dropna()
        api_change = chain.set_index("strike")["CE_oi_change"].loc[oi_change.index]
        assert (oi_change.to_numpy() == api_change.to_numpy()).all()
        assert life["future_close"].notna().all()


def test_oi_change_grid_is_strikes_by_days_of_the_legs(collected: Collected) -> None:
    legs = session_legs("NIFTY", EXPIRY, database=collected.database)
    grid = oi_change_grid(legs, "PE")
    puts = legs[legs["option_type"] == "PE"]
    assert list(grid.index) == sorted(puts["strike"].unique())
    row = puts.dropna(subset=["oi_change"]).iloc[-1]
    assert grid.loc[row["strike"], row["day"]] == row["oi_change"]
    assert set(legs["build_up"].astype(str)) <= {
        "long_build_up",
        "short_build_up",
        "short_covering",
        "long_unwinding",
        "neutral",
    }
