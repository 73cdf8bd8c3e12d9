"""Span limits of the candle endpoint and what the sandbox does with a longer request.

Upstox does not document how long a candle request may be, nor what happens past the limit. The
sandbox can play each answer seen or plausible, chosen by ``RangePolicy.behaviour``:

- ``"error"``: status 400 ``UDAPI1148`` "Invalid date range" (the answer reported for the live API);
- ``"keep_recent"``: status 200 with only the last ``N`` days of the range (``to_date - N + 1`` ..
  ``to_date``), as the SDK documents the regular candle endpoint ("last 1 month till endDate");
- ``"keep_earliest"``: status 200 with only the first ``N`` days (``from_date`` ..
  ``from_date + N - 1``).

``"truncate"`` is accepted as the older name of ``"keep_recent"``. ``N`` is the interval's span
limit in days counting both ends; a limit of a few thousand days lets every request through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import MappingProxyType
from typing import Literal

from expirytrack_dagster.sandbox.candles import INTERVAL_MINUTES

RangeBehaviour = Literal["error", "keep_recent", "keep_earliest"]
RANGE_BEHAVIOURS: tuple[str, ...] = ("error", "keep_recent", "keep_earliest")
"""What a request longer than its interval's span limit gets (see the module docstring)."""

BEHAVIOUR_ALIASES: Mapping[str, str] = MappingProxyType(
    {"truncate": "keep_recent", "keep-recent": "keep_recent", "keep-earliest": "keep_earliest"}
)
"""Other spellings accepted for a behaviour: the old ``truncate`` and the CLI's hyphenated forms."""

INTRADAY_INTERVALS: tuple[str, ...] = ("1minute", "3minute", "5minute", "15minute")
"""The intervals a single number for ``max_span_days`` sets (the longer ones keep their limit)."""

DEFAULT_MAX_SPAN_DAYS: Mapping[str, int] = MappingProxyType(
    {
        "1minute": 31,
        "3minute": 31,
        "5minute": 31,
        "15minute": 31,
        "30minute": 366,
        "day": 366,
    }
)
"""Longest request per interval, in days counting both ends (Upstox does not document it)."""

ANY_SPAN_DAYS = 36_600
"""A span limit no request reaches (a century): with it the endpoint serves every window whole."""

SpanLimits = Mapping[str, int] | int
"""Span limits as given by a user: per interval, or one number for every intraday interval."""


def normalise_behaviour(behaviour: str) -> str:
    """The canonical name of a range behaviour; ValueError for an unknown one."""
    canonical = BEHAVIOUR_ALIASES.get(behaviour, behaviour)
    if canonical not in RANGE_BEHAVIOURS:
        raise ValueError(
            f"range_behaviour must be one of {', '.join(RANGE_BEHAVIOURS)} "
            f"(or 'truncate' for keep_recent), not {behaviour!r}"
        )
    return canonical


def span_overrides(max_span_days: SpanLimits | None) -> dict[str, int]:
    """``max_span_days`` as a per-interval dict, checked: an int sets every intraday interval."""
    if max_span_days is None:
        return {}
    if isinstance(max_span_days, bool):
        raise TypeError("max_span_days must be a number of days or a mapping per interval")
    if isinstance(max_span_days, int):
        overrides = dict.fromkeys(INTRADAY_INTERVALS, max_span_days)
    else:
        overrides = dict(max_span_days)
    unknown = set(overrides) - set(INTERVAL_MINUTES)
    if unknown:
        raise ValueError(f"max_span_days has unknown intervals: {', '.join(sorted(unknown))}")
    if any(not isinstance(days, int) or days < 1 for days in overrides.values()):
        raise ValueError("max_span_days values must be whole numbers of at least 1")
    return overrides


@dataclass(frozen=True)
class RangePolicy:
    """Span limit per interval (days, both ends counted) and what a longer request gets.

    ``max_span_days`` always holds every interval; build one with ``RangePolicy.of``.
    """

    max_span_days: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_MAX_SPAN_DAYS))
    behaviour: RangeBehaviour = "error"

    @classmethod
    def of(cls, max_span_days: SpanLimits | None = None, behaviour: str = "error") -> RangePolicy:
        """The defaults overridden by ``max_span_days`` (mapping or one intraday number)."""
        return cls(
            MappingProxyType({**DEFAULT_MAX_SPAN_DAYS, **span_overrides(max_span_days)}),
            normalise_behaviour(behaviour),  # type: ignore[arg-type]
        )

    def changed(
        self, max_span_days: SpanLimits | None = None, behaviour: str | None = None
    ) -> RangePolicy:
        """A copy with some limits and/or the behaviour replaced (None keeps what is set)."""
        return RangePolicy(
            MappingProxyType({**self.max_span_days, **span_overrides(max_span_days)}),
            normalise_behaviour(behaviour or self.behaviour),  # type: ignore[arg-type]
        )

    def span_limit(self, interval: str) -> int:
        """The longest request for ``interval``, in days counting both ends."""
        return self.max_span_days[interval]

    def served_range(self, interval: str, from_date: date, to_date: date) -> tuple[date, date]:
        """The days a request for ``from_date .. to_date`` is answered with (both inclusive).

        Raises ``RangeRefused`` when the request is too long and the behaviour is ``"error"``.
        """
        limit = self.span_limit(interval)
        if (to_date - from_date).days + 1 <= limit:
            return from_date, to_date
        if self.behaviour == "error":
            raise RangeRefused(interval, limit)
        if self.behaviour == "keep_recent":
            return to_date - timedelta(days=limit - 1), to_date
        return from_date, from_date + timedelta(days=limit - 1)


class RangeRefused(Exception):
    """A candle request longer than the span limit, under the ``"error"`` behaviour."""

    def __init__(self, interval: str, limit: int):
        super().__init__(f"{interval} requests may span at most {limit} days")
        self.interval = interval
        self.limit = limit


# -- The V3 historical-candle endpoint (active instruments: the index itself) ---------------

V3_UNITS: Mapping[str, tuple[int, int]] = MappingProxyType(
    {"minutes": (1, 300), "hours": (1, 5), "days": (1, 1)}
)
"""The V3 units the sandbox serves and the intervals each allows (inclusive)."""

V3_SPAN_MONTHS: Mapping[str, int] = MappingProxyType(
    {"minutes_short": 1, "minutes_long": 3, "hours": 3, "days": 120}
)
"""Longest V3 request, in calendar months: one month for 1–15 minutes, a quarter above that (as
the Upstox docs say), a decade for days."""


def v3_span_months(unit: str, interval: int) -> int:
    """The longest V3 request for ``unit``/``interval``, in calendar months."""
    if unit == "minutes":
        return V3_SPAN_MONTHS["minutes_short" if interval <= 15 else "minutes_long"]
    return V3_SPAN_MONTHS[unit]


def v3_last_day(from_date: date, months: int) -> date:
    """The last day a request starting ``from_date`` may reach: one day before the same date
    ``months`` later (clamped to the month's end, so 31 January + 1 month is 28 February)."""
    month = from_date.month - 1 + months
    year, month = from_date.year + month // 12, month % 12 + 1
    days_in = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(from_date.day, days_in)) - timedelta(days=1)


def v3_served_range(
    behaviour: str, unit: str, interval: int, from_date: date, to_date: date
) -> tuple[date, date]:
    """The days a V3 request is answered with; ``RangeRefused`` past the limit under "error".

    The same behaviours as the expired endpoint (``RangePolicy.behaviour``), measured in months.
    """
    months = v3_span_months(unit, interval)
    last = v3_last_day(from_date, months)
    if to_date <= last:
        return from_date, to_date
    if behaviour == "error":
        raise RangeRefused(f"{unit}/{interval}", (last - from_date).days + 1)
    if behaviour == "keep_recent":
        start = to_date
        while v3_last_day(start - timedelta(days=1), months) >= to_date:
            start -= timedelta(days=1)
        return start, to_date
    return from_date, last
