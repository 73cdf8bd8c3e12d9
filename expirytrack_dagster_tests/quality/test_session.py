"""Session rule and expected-candle counts against the project calendar."""

from __future__ import annotations

from datetime import date

import pytest

from expirytrack_dagster.calendar import session_for
from expirytrack_dagster.quality import check_sessions, expected_candles
from expirytrack_dagster_tests.quality.frames import candles, key

FUT = key(64103)


def bars(*starts: str) -> list[tuple]:
    return [(FUT, start, 100.0, 100.0, 100.0, 100.0, 1, 1) for start in starts]


def test_regular_and_special_sessions_are_valid() -> None:
    frame = candles(
        bars(
            "2025-08-01 09:15",  # first minute of a regular day
            "2025-08-01 15:29",  # last minute
            "2024-11-01 18:30",  # Muhurat session
            "2024-01-20 10:00",  # Saturday special session
        )
    )
    result = check_sessions(frame)
    assert result.passed
    assert result.counts == {
        "rows": 4,
        "violating_rows": 0,
        "not_trading_day": 0,
        "outside_session": 0,
        "off_interval_grid": 0,
        "special_session_rows": 2,
        "unverified_day_rows": 0,
    }


def test_holiday_weekend_and_out_of_hours_candles_are_flagged() -> None:
    frame = candles(
        bars(
            "2025-08-01 10:00",  # valid
            "2024-11-01 10:00",  # Muhurat day: only the evening session traded
            "2025-08-15 10:00",  # Independence Day holiday
            "2025-08-16 10:00",  # an ordinary Saturday
            "2025-08-01 09:14",  # before the open
            "2025-08-01 15:30",  # the close is exclusive
            "2024-01-20 12:30",  # after the Saturday special session closed
        )
    )
    result = check_sessions(frame)
    assert not result.passed
    assert result.counts["violating_rows"] == 6
    assert result.counts["not_trading_day"] == 2
    assert result.counts["outside_session"] == 4
    assert result.counts["off_interval_grid"] == 0
    assert result.counts["special_session_rows"] == 0
    assert result.samples is not None
    assert list(result.samples["violations"]) == [
        "outside_session",
        "not_trading_day",
        "not_trading_day",
        "outside_session",
        "outside_session",
    ]
    assert result.samples["trading_date"].iloc[1] == date(2025, 8, 15)
    assert result.worst is not None
    assert result.worst.to_dict("records") == [{"expired_instrument_key": FUT, "violating_rows": 6}]


def test_candles_off_the_interval_grid_are_flagged() -> None:
    one_minute = candles(bars("2025-08-01 09:15:30", "2025-08-01 09:16"))
    assert check_sessions(one_minute).counts["off_interval_grid"] == 1
    five_minute = candles(bars("2025-08-01 09:15", "2025-08-01 09:20", "2025-08-01 09:21"))
    result = check_sessions(five_minute, interval=5)
    assert result.counts["off_interval_grid"] == 1
    assert result.counts["violating_rows"] == 1
    assert check_sessions(five_minute, interval="5minute").counts["off_interval_grid"] == 1


def test_daily_candles_are_checked_for_the_day_only() -> None:
    frame = candles(bars("2025-08-01 00:00", "2024-11-01 00:00", "2025-08-15 00:00"))
    result = check_sessions(frame, interval="day")
    assert result.counts == {
        "rows": 3,
        "violating_rows": 1,
        "not_trading_day": 1,
        "special_session_rows": 1,
        "unverified_day_rows": 0,
    }


def test_timestamps_in_another_zone_are_read_as_the_same_instant() -> None:
    frame = candles(bars("2025-08-01 09:15"))
    frame["timestamp"] = frame["timestamp"].dt.tz_convert("UTC")  # 03:45 UTC
    assert check_sessions(frame).passed


@pytest.mark.parametrize(
    ("day", "interval", "expected"),
    [
        (date(2025, 8, 1), 1, 375),
        (date(2025, 8, 1), 3, 125),
        (date(2025, 8, 1), 5, 75),
        (date(2025, 8, 1), 15, 25),
        (date(2025, 8, 1), 30, 13),  # 09:15 ... 15:15, the last bar cut short by the close
        (date(2025, 8, 1), "day", 1),
        (date(2024, 11, 1), 1, 60),  # Muhurat
        (date(2024, 11, 1), 30, 2),
        (date(2024, 1, 20), 1, 195),  # Saturday special session
        (date(2024, 1, 20), "30minute", 7),
    ],
)
def test_expected_candles(day: date, interval: int | str, expected: int) -> None:
    session = session_for(day)
    assert session is not None
    assert expected_candles(session, interval) == expected


def test_unsupported_interval_is_rejected() -> None:
    session = session_for(date(2025, 8, 1))
    assert session is not None
    with pytest.raises(ValueError, match="unsupported candle interval"):
        expected_candles(session, 2)


def test_naive_timestamps_are_read_as_ist() -> None:
    frame = candles(bars("2025-08-01 09:15", "2025-08-01 08:00"))
    frame["timestamp"] = frame["timestamp"].dt.tz_localize(None)
    assert check_sessions(frame).counts["outside_session"] == 1
