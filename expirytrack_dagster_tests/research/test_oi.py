"""PCR, max pain, OI build-up and the OI tracker on hand-computed chains."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from expirytrack_dagster.research.oi import BUILD_UP_CLASSES, build_up, max_pain, oi_tracker, pcr
from expirytrack_dagster_tests.research.frames import candle_frame, ist


def chain(rows: list[tuple]) -> pd.DataFrame:
    """(strike, type, oi, session_volume) rows."""
    return pd.DataFrame(rows, columns=["strike", "option_type", "oi", "session_volume"])


CHAIN = chain(
    [
        (100.0, "CE", 10, 7), (110.0, "CE", 20, 3), (120.0, "CE", 5, 0),
        (100.0, "PE", 5, 1), (110.0, "PE", 15, 2), (120.0, "PE", 30, 5),
    ]
)  # fmt: skip


def test_max_pain_minimises_the_payout_ties_to_the_lower_strike() -> None:
    # Settle at 100: puts pay 15*10 + 30*20 = 750. At 110: calls 10*10 = 100, puts 30*10 = 300,
    # total 400. At 120: calls 10*20 + 20*10 = 400, puts 0, total 400. 110 and 120 tie: 110.
    assert max_pain(CHAIN) == 110.0
    skewed = CHAIN.assign(oi=[10, 20, 5, 5, 15, 31])  # one more put at 120: 120 now costs less
    assert max_pain(skewed) == 120.0


def test_max_pain_is_always_a_listed_strike_and_nan_without_oi() -> None:
    assert max_pain(CHAIN) in set(CHAIN["strike"])
    assert math.isnan(max_pain(CHAIN.assign(oi=[0, 0, None, 0, 0, 0])))


def test_pcr_by_oi_and_by_volume() -> None:
    assert pcr(CHAIN) == {"pcr_oi": pytest.approx(50 / 35), "pcr_volume": pytest.approx(8 / 10)}
    no_calls = CHAIN[CHAIN["option_type"] == "PE"]
    assert all(math.isnan(v) for v in pcr(no_calls).values())


def test_build_up_classes() -> None:
    price = pd.Series([2.0, -1.0, 0.5, -0.5, 0.0, 1.0, None])
    oi = pd.Series([100, 50, -10, -20, 30, 0, 10])
    got = build_up(price, oi)
    assert list(got) == [
        "long_build_up",
        "short_build_up",
        "short_covering",
        "long_unwinding",
        "neutral",
        "neutral",
        "neutral",
    ]
    assert list(got.cat.categories) == list(BUILD_UP_CLASSES)


CANDLES = candle_frame(
    [
        ("A", "2025-08-14 09:15", 10.0, 1, 100, 24000, "CE"),
        ("A", "2025-08-14 10:00", 10.0, 1, 150, 24000, "CE"),
        ("A", "2025-08-14 10:27", 10.0, 1, 160, 24000, "CE"),
        ("A", "2025-08-14 10:30", 10.0, 1, 175, 24000, "CE"),
        ("C", "2025-08-13 15:29", 5.0, 1, 40, 24000, "PE"),  # yesterday: not a base for today
        ("C", "2025-08-14 10:29", 5.0, 1, 60, 24000, "PE"),
        ("B", "2025-08-14 10:00", 1.0, 1, 999, 24100, "CE"),  # strike not asked for
    ]
)


def test_oi_tracker_changes_over_windows_within_the_session() -> None:
    got = oi_tracker(CANDLES, ist("2025-08-14 10:30"), [24000], windows=(3, 5, 30, 90))
    assert list(got["expired_instrument_key"]) == ["A", "C"]
    a, c = got.iloc[0], got.iloc[1]
    assert a["oi"] == 175
    assert a["oi_chg_3m"] == 15 and a["oi_chg_pct_3m"] == pytest.approx(100 * 15 / 160)
    assert a["oi_chg_5m"] == 25  # as of 10:25 the last candle is 10:00 (150)
    assert a["oi_chg_30m"] == 25  # the 10:00 candle itself
    assert math.isnan(a["oi_chg_90m"]) and math.isnan(a["oi_chg_pct_90m"])  # 09:00: before open
    # C first traded today at 10:29: no base as of 10:27 (yesterday's OI is not carried).
    assert c["oi"] == 60 and math.isnan(c["oi_chg_3m"]) and math.isnan(c["oi_chg_30m"])


def test_oi_tracker_window_reaching_before_the_open_is_nan() -> None:
    got = oi_tracker(CANDLES, ist("2025-08-14 09:20"), [24000], windows=(5, 10))
    a = got.set_index("expired_instrument_key").loc["A"]
    assert a["oi_chg_5m"] == 0  # 09:15 is the open itself: allowed
    assert math.isnan(a["oi_chg_10m"])
