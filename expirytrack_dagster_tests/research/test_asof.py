"""The chain as of a minute: same session only, age, cumulative volume, OI and its change."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from expirytrack_dagster.research.asof import chain_asof
from expirytrack_dagster_tests.research.frames import candle_frame, ist

# Thursday 14 Aug 2025; the previous session is Wednesday 13 Aug.
ROWS = [
    # A traded yesterday and today: at 10:30 its price is the 10:00 candle (30 minutes old).
    ("A", "2025-08-13 15:29", 10.0, 5, 100, 24000, "CE"),
    ("A", "2025-08-14 09:15", 11.0, 4, 120, 24000, "CE"),
    ("A", "2025-08-14 10:00", 12.0, 7, 150, 24000, "CE"),
    ("A", "2025-08-14 10:31", 13.0, 1, 160, 24000, "CE"),  # after `at`: ignored
    # B trades exactly at 10:30.
    ("B", "2025-08-13 15:00", 20.0, 3, 300, 24000, "PE"),
    ("B", "2025-08-13 15:10", 19.0, 3, 280, 24000, "PE"),
    ("B", "2025-08-14 10:30", 21.0, 2, 310, 24000, "PE"),
    # C last traded yesterday: no price today, never carried across sessions.
    ("C", "2025-08-13 14:00", 30.0, 9, 500, 24100, "CE"),
    # D traded two sessions ago only (Tuesday): no price, and no previous-session OI either.
    ("D", "2025-08-12 11:00", 40.0, 1, 70, 24100, "PE"),
]


@pytest.fixture
def chain() -> pd.DataFrame:
    return chain_asof(candle_frame(ROWS), ist("2025-08-14 10:30")).set_index(
        "expired_instrument_key"
    )


def test_last_candle_of_the_same_session_with_its_age(chain: pd.DataFrame) -> None:
    assert chain.loc["A", "close"] == 12.0
    assert chain.loc["A", "timestamp"] == ist("2025-08-14 10:00")
    assert chain.loc["A", "age_minutes"] == 30
    assert chain.loc["B", "close"] == 21.0 and chain.loc["B", "age_minutes"] == 0


def test_a_price_from_the_previous_session_is_not_carried(chain: pd.DataFrame) -> None:
    assert math.isnan(chain.loc["C", "close"])
    assert pd.isna(chain.loc["C", "timestamp"]) and math.isnan(chain.loc["C", "age_minutes"])
    assert math.isnan(chain.loc["C", "oi"]) and chain.loc["C", "session_volume"] == 0
    assert chain.loc["C", "prev_session_oi"] == 500


def test_session_volume_oi_and_change_vs_previous_session(chain: pd.DataFrame) -> None:
    assert chain.loc["A", "session_volume"] == 4 + 7  # 10:31 excluded, yesterday excluded
    assert chain.loc["A", "oi"] == 150
    assert chain.loc["A", "prev_session_oi"] == 100
    assert chain.loc["A", "oi_change"] == 50
    assert chain.loc["B", "prev_session_oi"] == 280  # the previous session's LAST candle
    assert chain.loc["B", "oi_change"] == 30
    assert math.isnan(chain.loc["D", "prev_session_oi"])  # Tuesday is not the previous session
    assert math.isnan(chain.loc["D", "oi_change"])


def test_per_contract_columns_are_carried(chain: pd.DataFrame) -> None:
    assert list(chain.index) == ["A", "B", "C", "D"]
    assert chain.loc["C", "strike"] == 24100 and chain.loc["B", "option_type"] == "PE"


def test_a_time_outside_a_session_is_refused() -> None:
    frame = candle_frame(ROWS)
    with pytest.raises(ValueError, match="not a trading day"):
        chain_asof(frame, ist("2025-08-16 10:30"))  # Saturday
    with pytest.raises(ValueError, match="outside the session"):
        chain_asof(frame, ist("2025-08-14 15:30"))  # the close is exclusive
    with pytest.raises(ValueError, match="outside the session"):
        chain_asof(frame, ist("2025-08-14 09:14"))


def test_microsecond_timestamps_as_duckdb_returns_them() -> None:
    frame = candle_frame(ROWS)
    frame["timestamp"] = frame["timestamp"].astype("datetime64[us, Asia/Kolkata]")
    got = chain_asof(frame, ist("2025-08-14 10:30"))
    want = chain_asof(candle_frame(ROWS), ist("2025-08-14 10:30"))
    pd.testing.assert_frame_equal(got, want)
