"""The calendar's sessions are the maintained XBOM calendar's, and its vectorised IST dates agree
with pandas' own conversion."""

from __future__ import annotations

from datetime import date, timedelta

import exchange_calendars
import numpy as np
import pandas as pd
import pytest

from expirytrack_dagster.calendar import (
    CALENDAR_START,
    IST,
    SPECIAL_SESSIONS,
    is_trading_day,
    is_verified,
    ist_day_counts,
    ist_days,
    utc_ns,
    wall_clock_ns,
)


def test_trading_days_are_the_sessions_exchange_calendars_builds() -> None:
    """Every day from CALENDAR_START to the library's last session: the days worked out from
    XBOM's definition trade exactly when the library's own build has a session there (or when
    the project lists a special session the library lacks, Muhurat trading)."""
    library = exchange_calendars.get_calendar("XBOM", start=CALENDAR_START)
    sessions = {d.date() for d in library.sessions}
    first, last = library.first_session.date(), library.last_session.date()
    listed = sessions | set(SPECIAL_SESSIONS)
    days = pd.date_range(CALENDAR_START, last).date
    assert [d for d in days if is_trading_day(d) != (d in listed)] == []
    assert is_verified(first) and is_verified(last)
    assert not is_verified(last + timedelta(days=1))
    # What the library holds and the rule must get right: a Saturday session, a weekday holiday.
    assert is_trading_day(date(2025, 2, 1)) and date(2025, 2, 1).weekday() == 5
    assert not is_trading_day(date(2025, 8, 15))  # Independence Day, a Friday


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/New_York"])
def test_ist_days_are_the_dates_pandas_gives_around_ist_midnight(unit: str, zone: str) -> None:
    # Every 7 minutes across four IST midnights (18:30 UTC), in any zone and resolution.
    stamps = pd.Series(pd.date_range("2025-08-01 17:00", "2025-08-05 20:00", freq="7min", tz="UTC"))
    stamps = stamps.dt.tz_convert(zone).astype(f"datetime64[{unit}, {zone}]")
    expected = stamps.dt.tz_convert(IST).dt.date
    days = ist_days(stamps)
    assert days.dtype == np.dtype("datetime64[D]")
    assert list(days.astype(object)) == list(expected)
    assert ist_day_counts(stamps) == expected.value_counts().to_dict()


def test_a_stamp_belongs_to_the_ist_day_it_falls_on() -> None:
    stamps = pd.Series(
        pd.to_datetime(["2025-08-01 18:29:59", "2025-08-01 18:30:00"]).tz_localize("UTC")
    )
    assert list(ist_days(stamps).astype(object)) == [date(2025, 8, 1), date(2025, 8, 2)]
    assert ist_day_counts(stamps.iloc[:0]) == {}


def test_wall_clock_and_utc_nanoseconds_whatever_the_column_holds() -> None:
    aware = pd.Series(pd.date_range("2025-08-01 17:00", periods=50, freq="7min", tz="UTC"))
    wall = aware.dt.tz_convert(IST).dt.tz_localize(None).dt.as_unit("ns").array.asi8
    inputs = {
        "aware (us)": aware.dt.as_unit("us"),
        "naive IST": aware.dt.tz_convert(IST).dt.tz_localize(None),
        "objects": pd.Series(list(aware.dt.tz_convert(IST)), dtype=object),
        "strings": aware.astype(str),
    }
    for name, column in inputs.items():
        assert (wall_clock_ns(column) == wall).all(), name
    assert (utc_ns(aware.dt.as_unit("s")) == aware.dt.as_unit("ns").array.asi8).all()
    assert (utc_ns(aware.astype(str)) == aware.dt.as_unit("ns").array.asi8).all()
