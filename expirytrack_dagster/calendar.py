"""The NSE/BSE F&O trading calendar: which days trade, and when each session opens and closes (IST).

Regular days and holidays come from the maintained ``exchange_calendars`` XBOM calendar (BSE; NSE's
equity-derivative holidays are the same). No maintained calendar carries the exchanges' special
sessions (Muhurat trading, Saturday live sessions), so they are listed in ``SPECIAL_SESSIONS``; a
special session replaces that day's regular hours. This is the project's one calendar: the sandbox,
the lookback windows and the quality rules all ask it. Its IST arithmetic on whole columns
(``utc_ns``, ``wall_clock_ns``, ``day_numbers``, ``ist_days``) is what the vectorised rules and collection share.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import exchange_calendars

IST = ZoneInfo("Asia/Kolkata")
"""Indian Standard Time, UTC+05:30 all year (no daylight saving). Every exchange timestamp is IST."""

REGULAR_OPEN = time(9, 15)
REGULAR_CLOSE = time(15, 30)


@dataclass(frozen=True)
class Session:
    """One trading session: ``open`` inclusive, ``close`` exclusive, both timezone-aware IST."""

    trading_date: date
    open: datetime
    close: datetime
    kind: str  # "regular" or the special session's name, e.g. "muhurat"

    @property
    def minutes(self) -> int:
        """How many one-minute candles a fully traded session has (375 on a regular day)."""
        return int((self.close - self.open).total_seconds() // 60)


def _ist(d: date, t: time) -> datetime:
    return datetime.combine(d, t, tzinfo=IST)


# Special sessions, each replacing the day's regular hours. Dates and hours as published by the
# exchanges for these events (Diwali Muhurat trading; the Saturday live session of 20 Jan 2024).
# Add a row when the exchange announces a new one; a candle inside an unlisted special session is
# reported by the session quality check as a warning, never dropped.
SPECIAL_SESSIONS: dict[date, tuple[time, time, str]] = {
    date(2024, 1, 20): (time(9, 15), time(12, 30), "saturday_special"),
    date(2024, 11, 1): (time(18, 0), time(19, 0), "muhurat"),
    date(2025, 10, 21): (time(13, 45), time(14, 45), "muhurat"),
}


CALENDAR_START = "2020-01-01"
"""First day the calendar's sessions are worked out from: the expired-instruments API serves recent
expiries (its recorded samples are from late 2022 on). A day before it is treated like a day beyond
the calendar's last year: weekdays trade, and the quality report flags it unverified."""


@functools.cache
def _xbom() -> exchange_calendars.ExchangeCalendar:
    """The XBOM calendar built over its first week only: its definition (weekmasks, holidays,
    default end), not its sessions; :func:`_session_days` works those out.

    Imported here, on the first question about a day: the library loads every exchange's
    calendar (0.14 s), and the many processes that only need ``IST`` should not pay it."""
    import exchange_calendars

    start = pd.Timestamp(CALENDAR_START)
    return exchange_calendars.get_calendar("XBOM", start=start, end=start + pd.Timedelta(days=7))


@functools.cache
def _session_days() -> np.ndarray:
    """Every session date from ``CALENDAR_START`` to the calendar's default end, ``datetime64[D]``.

    The same dates as ``exchange_calendars.get_calendar("XBOM", start=CALENDAR_START).sessions``
    (a test compares the two), from the same definition: the weekdays its weekmask trades (a
    special weekmask, e.g. a Saturday session's week, in force between its two dates inclusive)
    that are not holidays. The library's own build steps through the days with a pandas offset
    that costs 0.36 CPU-seconds in every process that asks (the CLI, each run, each test worker);
    numpy's business-day functions take a few milliseconds.
    """
    cal = _xbom()
    start = np.datetime64(CALENDAR_START, "D")
    end = np.datetime64(cal.default_end().date(), "D")
    days = np.arange(start, end + 1)
    holidays = list(cal.adhoc_holidays)
    if cal.regular_holidays is not None:
        holidays += list(cal.regular_holidays.holidays(start=str(start), end=str(end)))
    closed = pd.DatetimeIndex(holidays).values.astype("datetime64[D]")
    traded = np.is_busday(days, weekmask=cal.weekmask, holidays=closed)
    for first, last, weekmask in getattr(cal, "special_weekmasks", None) or []:
        week = (days >= np.datetime64(first.date(), "D")) & (
            days <= np.datetime64(last.date(), "D")
        )
        traded[week] = np.is_busday(days[week], weekmask=weekmask, holidays=closed)
    return days[traded]


@functools.cache
def _regular_days() -> frozenset[date]:
    return frozenset(_session_days().astype(object))


@functools.cache
def _calendar_bounds() -> tuple[date, date]:
    days = _session_days()
    return days[0].astype(object), days[-1].astype(object)


def is_trading_day(day: date) -> bool:
    """True when the F&O segment trades on ``day`` (regular or special session).

    Beyond the maintained calendar's last year, weekdays are assumed to trade; the quality
    report flags such days as unverified rather than guessing holidays.
    """
    if day in SPECIAL_SESSIONS:
        return True
    first, last = _calendar_bounds()
    if first <= day <= last:
        return day in _regular_days()
    return day.weekday() < 5


def session_for(day: date) -> Session | None:
    """The session traded on ``day``, or None on a holiday or weekend."""
    if day in SPECIAL_SESSIONS:
        start, end, kind = SPECIAL_SESSIONS[day]
        return Session(day, _ist(day, start), _ist(day, end), kind)
    if not is_trading_day(day):
        return None
    return Session(day, _ist(day, REGULAR_OPEN), _ist(day, REGULAR_CLOSE), "regular")


def sessions_between(start: date, end: date) -> list[Session]:
    """Every session from ``start`` to ``end``, both inclusive, in date order."""
    out: list[Session] = []
    day = start
    while day <= end:
        session = session_for(day)
        if session is not None:
            out.append(session)
        day += timedelta(days=1)
    return out


def trading_days_between(start: date, end: date) -> list[date]:
    """Trading dates from ``start`` to ``end``, both inclusive."""
    return [s.trading_date for s in sessions_between(start, end)]


def session_minute_index(session: Session) -> pd.DatetimeIndex:
    """The start time of every one-minute candle a fully traded ``session`` has (IST)."""
    return pd.date_range(session.open, session.close, freq="1min", inclusive="left")


IST_OFFSET_NS = 19_800 * 1_000_000_000
"""IST's offset from UTC (+05:30, the same all year) in nanoseconds."""
NS_PER_DAY = 86_400 * 1_000_000_000


def utc_ns(timestamps: pd.Series) -> np.ndarray:
    """The instants of timezone-aware timestamps as int64 nanoseconds since the epoch (UTC).

    Anything else goes through ``pd.to_datetime(..., utc=True)`` as before (naive values are
    then taken as UTC); an already-aware column skips it, which costs a pass per element.
    """
    if not isinstance(timestamps.dtype, pd.DatetimeTZDtype):
        timestamps = pd.to_datetime(timestamps, utc=True)
    return timestamps.array.as_unit("ns").asi8


def wall_clock_ns(timestamps: pd.Series) -> np.ndarray:
    """IST wall-clock time of each timestamp as int64 nanoseconds (naive timestamps are IST).

    Comparing plain integers against per-day session bounds is what keeps the session and
    coverage rules fast on millions of candles. IST is UTC+05:30 all year, so a fixed offset on
    the UTC instants is exact, and ~40x faster than pandas' per-element zoneinfo conversion.
    """
    if not isinstance(timestamps.dtype, pd.DatetimeTZDtype):
        timestamps = pd.to_datetime(timestamps)
        if not isinstance(timestamps.dtype, pd.DatetimeTZDtype):
            return timestamps.array.as_unit("ns").asi8
    return utc_ns(timestamps) + IST_OFFSET_NS


def day_numbers(wall_ns: np.ndarray) -> np.ndarray:
    """The IST trading date of each wall-clock time, as int64 days since 1970-01-01.

    Plain integers: binary searches over them are several times faster than over datetime64.
    """
    return wall_ns // NS_PER_DAY


def ist_days(stamps: pd.Series) -> np.ndarray:
    """The IST calendar date of each timestamp (naive ones are IST), as ``datetime64[D]``.

    The same dates as ``stamps.dt.tz_convert(IST).dt.date`` without a Python ``date`` per row
    (:func:`wall_clock_ns`): a partition has millions of candles. Compare with
    ``np.datetime64(day, "D")``; ``.astype(object)`` gives ``date`` objects back.
    """
    return day_numbers(wall_clock_ns(stamps)).astype("datetime64[D]")


def ist_day_counts(stamps: pd.Series) -> dict[date, int]:
    """How many of ``stamps`` (naive ones are IST) fall on each IST date."""
    days, counts = np.unique(ist_days(stamps), return_counts=True)
    return dict(zip(days.astype(object), counts.tolist(), strict=True))


def is_verified(day: date) -> bool:
    """True when ``day`` lies inside the maintained calendar's range (holidays known)."""
    first, last = _calendar_bounds()
    return first <= day <= last or day in SPECIAL_SESSIONS
