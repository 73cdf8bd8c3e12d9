"""Expiry calendars: the dates each underlying's contracts expire on, following its eras."""

from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass
from datetime import date, timedelta

from expirytrack_dagster.calendar import session_for
from expirytrack_dagster.sandbox.profiles import ExpiryEra, UnderlyingProfile

FIRST_DAY = date(2010, 1, 1)
"""The sandbox's market starts here; nothing expires or trades before it."""
LAST_DAY = date(2040, 12, 31)
"""The sandbox's market ends here."""


def is_expiry_eligible(day: date) -> bool:
    """True when contracts can expire on ``day``: a trading day with regular hours.

    Exchanges never expire contracts in a Muhurat or other special session; they pull the
    expiry forward like on a holiday.
    """
    session = session_for(day)
    return session is not None and session.kind == "regular"


def shift_to_trading_day(day: date) -> date:
    """``day`` itself, or the closest earlier day with a regular session."""
    while not is_expiry_eligible(day):
        day -= timedelta(days=1)
    return day


def _month_starts(start: date, end: date) -> list[date]:
    out, cursor = [], start.replace(day=1)
    while cursor <= end:
        out.append(cursor)
        cursor = (cursor + timedelta(days=32)).replace(day=1)
    return out


def _last_weekday(month_start: date, weekday: int) -> date:
    last = (month_start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _era_dates(era: ExpiryEra) -> list[date]:
    start = max(era.start or FIRST_DAY, FIRST_DAY)
    end = min(era.end or LAST_DAY, LAST_DAY)
    if start > end:
        return []
    if era.weekly is not None:
        first = start + timedelta(days=(era.weekly - start.weekday()) % 7)
        raw = [first + timedelta(weeks=k) for k in range((end - first).days // 7 + 1)]
    else:
        raw = [_last_weekday(m, era.monthly) for m in _month_starts(start, end)]
        raw = [d for d in raw if start <= d <= end]
    return [shift_to_trading_day(d) for d in raw]


@dataclass(frozen=True)
class ExpiryCalendar:
    """Every expiry of one underlying, ascending; the monthly ones are the last of each month."""

    dates: tuple[date, ...]
    monthly: frozenset[date]

    def between(self, start: date, end: date) -> list[date]:
        """The expiries from ``start`` to ``end``, both inclusive, ascending."""
        lo = bisect.bisect_left(self.dates, start)
        hi = bisect.bisect_right(self.dates, end)
        return list(self.dates[lo:hi])

    def __contains__(self, day: object) -> bool:
        if not isinstance(day, date):
            return False
        i = bisect.bisect_left(self.dates, day)
        return i < len(self.dates) and self.dates[i] == day

    def is_monthly(self, day: date) -> bool:
        """True for the month's last expiry: the one that also has a future."""
        return day in self.monthly


@functools.lru_cache(maxsize=256)
def expiry_calendar(profile: UnderlyingProfile) -> ExpiryCalendar:
    """The full expiry calendar of ``profile`` from ``FIRST_DAY`` to ``LAST_DAY``."""
    dates = sorted({d for era in profile.eras for d in _era_dates(era)})
    last_of_month: dict[tuple[int, int], date] = {}
    for d in dates:
        last_of_month[(d.year, d.month)] = d
    return ExpiryCalendar(tuple(dates), frozenset(last_of_month.values()))
