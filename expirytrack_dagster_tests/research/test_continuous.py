"""Continuous futures by hand: which contract each session comes from, and the roll gaps."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from expirytrack_dagster.research.continuous import CONTINUOUS_COLUMNS, RollRule, rolls, stitch

AUG, SEP = date(2025, 8, 28), date(2025, 9, 30)
AUG_KEY, SEP_KEY = "NSE_FO|1|28-08-2025", "NSE_FO|2|30-09-2025"


def _candles(key: str, expiry: date, closes: dict[str, float]) -> pd.DataFrame:
    """One future's candles: IST minute → close (open/high/low around it)."""
    stamps = pd.to_datetime(list(closes)).tz_localize("Asia/Kolkata")
    close = pd.Series(list(closes.values()), dtype="float64")
    return pd.DataFrame(
        {
            "underlying_symbol": "NIFTY",
            "partition_key": f"NIFTY_{expiry.isoformat()}",
            "expired_instrument_key": key,
            "expiry": expiry,
            "timestamp": stamps,
            "open": close - 1,
            "high": close + 2,
            "low": close - 2,
            "close": close,
            "volume": 75,
            "open_interest": 1500,
        }
    )


@pytest.fixture
def futures() -> pd.DataFrame:
    """Aug (expires Thu 28 Aug) and Sep, both trading 26, 28 and 29 Aug (27 Aug is a holiday) at 09:15 and 09:16;
    Sep trades 60 points above Aug at 09:16 on the 28th and 50 above on the 26th."""
    aug = _candles(
        AUG_KEY,
        AUG,
        {
            "2025-08-26 09:15": 100.0,
            "2025-08-26 09:16": 101.0,
            "2025-08-28 09:15": 102.0,
            "2025-08-28 09:16": 103.0,
        },
    )
    sep = _candles(
        SEP_KEY,
        SEP,
        {
            "2025-08-26 09:15": 150.0,
            "2025-08-26 09:16": 151.0,
            "2025-08-28 09:15": 160.0,
            "2025-08-28 09:16": 163.0,
            "2025-08-29 09:15": 170.0,
            "2025-08-29 09:16": 171.0,
        },
    )
    return pd.concat([sep, aug], ignore_index=True)  # order of the input does not matter


def test_on_expiry_uses_the_expiring_future_through_its_expiry_session(futures) -> None:
    series = stitch(futures, RollRule())
    assert list(series.columns) == list(CONTINUOUS_COLUMNS)
    by_day = series.groupby("session_date")["expired_instrument_key"].unique()
    assert {d: list(k) for d, k in by_day.items()} == {
        date(2025, 8, 26): [AUG_KEY],
        date(2025, 8, 28): [AUG_KEY],
        date(2025, 8, 29): [SEP_KEY],
    }
    assert series["close"].tolist() == [100.0, 101.0, 102.0, 103.0, 170.0, 171.0]
    # Gap at the last minute both traded on Aug's last front session: 163 - 103 = 60.
    assert series["adjustment"].tolist() == [60.0] * 4 + [0.0] * 2
    assert series["adj_close"].tolist() == [160.0, 161.0, 162.0, 163.0, 170.0, 171.0]
    assert (series["adj_high"] - series["adj_close"]).eq(2.0).all()
    assert series["timestamp"].is_monotonic_increasing


def test_sessions_before_rolls_earlier_and_measures_the_gap_that_day(futures) -> None:
    series = stitch(futures, RollRule(sessions_before=1))
    assert (
        series.loc[series["session_date"] == date(2025, 8, 28), "expired_instrument_key"]
        .eq(SEP_KEY)
        .all()
    )
    assert series["close"].tolist() == [100.0, 101.0, 160.0, 163.0, 170.0, 171.0]
    # Aug's last front session is the 26th: 151 - 101 = 50 at 09:16.
    assert series["adjustment"].tolist() == [50.0, 50.0, 0.0, 0.0, 0.0, 0.0]
    (roll,) = rolls(series).itertuples()
    assert (roll.from_contract, roll.to_contract, roll.gap) == (AUG_KEY, SEP_KEY, 50.0)
    assert (roll.last_session_old, roll.first_session_new) == (date(2025, 8, 26), date(2025, 8, 28))
    assert roll.missing_sessions == 0


def test_without_a_common_minute_the_gap_uses_each_contract_s_last_close(futures) -> None:
    thinned = futures.drop(
        futures.index[
            (futures["expired_instrument_key"] == SEP_KEY)
            & (futures["timestamp"] == pd.Timestamp("2025-08-28 09:16", tz="Asia/Kolkata"))
        ]
    )
    aug_only_last = thinned.drop(
        thinned.index[
            (thinned["expired_instrument_key"] == AUG_KEY)
            & (thinned["timestamp"] == pd.Timestamp("2025-08-28 09:15", tz="Asia/Kolkata"))
        ]
    )
    series = stitch(aug_only_last, RollRule())
    # Aug's last is 103 at 09:16, Sep's last on the 28th is 160 at 09:15: gap 57.
    assert series["adjustment"].iloc[0] == 57.0


def test_a_session_without_the_new_front_month_is_a_gap_at_the_roll(futures) -> None:
    holed = futures[
        ~(
            (futures["expired_instrument_key"] == SEP_KEY)
            & (futures["timestamp"].dt.date == date(2025, 8, 29))
        )
    ]
    later = _candles(SEP_KEY, SEP, {"2025-09-01 09:15": 180.0})
    series = stitch(pd.concat([holed, later], ignore_index=True), RollRule())
    (roll,) = rolls(series).itertuples()
    assert roll.first_session_new == date(2025, 9, 1)
    assert roll.missing_sessions == 1  # Friday 29 August traded, the series has nothing


def test_roll_rule_counts_trading_sessions_not_calendar_days() -> None:
    # Expiry Tue 30 Sep 2025: two sessions before is Fri 26 Sep (weekend skipped).
    assert RollRule(sessions_before=2).last_front_session(SEP) == date(2025, 9, 26)
    assert RollRule().last_front_session(SEP) == SEP
    assert RollRule(sessions_before=2).describe() == "sessions_before: 2"
    with pytest.raises(ValueError, match="sessions_before"):
        RollRule(sessions_before=-1)


def test_empty_input_gives_the_typed_empty_series() -> None:
    empty = stitch(pd.DataFrame(columns=["underlying_symbol"]), RollRule())
    assert list(empty.columns) == list(CONTINUOUS_COLUMNS) and empty.empty
