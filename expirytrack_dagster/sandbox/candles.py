"""Candle arrays: one session's one-minute bars, their aggregation to longer intervals, and JSON rows."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date

import numpy as np

from expirytrack_dagster.calendar import Session, session_for

INTERVAL_MINUTES: dict[str, int | None] = {
    "1minute": 1,
    "3minute": 3,
    "5minute": 5,
    "15minute": 15,
    "30minute": 30,
    "day": None,
}
"""Minutes per bar of each interval the endpoint serves (None: one bar per session).

The sandbox's own list, deliberately not imported from the client (``upstox.models``): the fake
must not share a model with the code it tests, or a drift between them could not be caught.
"""

CANDLE_COLUMNS: tuple[str, ...] = (
    "timestamp",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "open_interest",
)
"""The values of each JSON candle row, in order (the sandbox's own list, like ``INTERVAL_MINUTES``)."""


@dataclass(frozen=True)
class Bars:
    """Bars of one session, ascending: start minute (from the session open) and OHLCV+OI.

    Prices are integer paise so that rounding to the tick is exact and JSON shows no float noise.
    """

    minute: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    oi: np.ndarray

    def __len__(self) -> int:
        return int(self.minute.size)


_EMPTY_INT = np.zeros(0, dtype=np.int64)
EMPTY_BARS = Bars(*([_EMPTY_INT] * 7))


def aggregate(bars: Bars, interval: str) -> Bars:
    """``bars`` (one-minute) merged into ``interval`` bars aligned to the session open.

    Open is the first traded minute's open, high the max, low the min, close the last close,
    volume the sum and open interest the last value; buckets without a trade produce no bar.
    """
    size = INTERVAL_MINUTES[interval]
    if size == 1 or not len(bars):
        return bars
    bucket = np.zeros_like(bars.minute) if size is None else bars.minute // size
    starts = np.flatnonzero(np.diff(bucket, prepend=-1))
    ends = np.append(starts[1:], bucket.size) - 1
    return Bars(
        minute=bucket[starts] * (size or 0),
        open=bars.open[starts],
        high=np.maximum.reduceat(bars.high, starts),
        low=np.minimum.reduceat(bars.low, starts),
        close=bars.close[ends],
        volume=np.add.reduceat(bars.volume, starts),
        oi=bars.oi[ends],
    )


_CLOCK = tuple(f"{m // 60:02d}:{m % 60:02d}:00+05:30" for m in range(24 * 60))


@functools.lru_cache(maxsize=1024)
def session_of(day: date) -> Session | None:
    """``calendar.session_for``, memoised: candle generation asks for the same days again and again."""
    return session_for(day)


@functools.lru_cache(maxsize=1024)
def session_stamps(day: date) -> tuple[str, ...]:
    """ISO-8601 IST start of every minute of ``day``'s session, e.g. ``2025-08-01T09:15:00+05:30``."""
    session = session_of(day)
    if session is None:
        return ()
    prefix = f"{day.isoformat()}T"
    start = session.open.hour * 60 + session.open.minute
    return tuple(prefix + clock for clock in _CLOCK[start : start + session.minutes])


def day_stamp(day: date) -> str:
    """The timestamp Upstox gives a day candle: midnight IST of the trading date."""
    return f"{day.isoformat()}T00:00:00+05:30"


# Decimal tails of a price by its paise: "" for whole rupees (Upstox writes 24624, not 24624.0),
# ".5" for 50 paise, ".05" for 5. Formatting integers is several times faster than float repr.
_PAISE_TAILS = ("", *(f".{p:02d}".rstrip("0") for p in range(1, 100)))


def price_texts(paise: np.ndarray) -> list[str]:
    """Non-negative integer paise as JSON numbers in rupees, shortest form (``24618.9``)."""
    rupees, rest = np.divmod(paise, 100)
    return list(
        map(str.__add__, map(str, rupees.tolist()), map(_PAISE_TAILS.__getitem__, rest.tolist()))
    )


def render_day(day: date, bars: Bars, interval: str) -> str:
    """The JSON candle rows of one session's ``bars``, newest first, comma-separated.

    Rendering per day lets a response for any date range be joined from cached pieces.
    """
    if not len(bars):
        return ""
    if INTERVAL_MINUTES[interval] is None:
        stamps: list[str] = [day_stamp(day)] * len(bars)
    else:
        clock = session_stamps(day)
        stamps = [clock[i] for i in bars.minute[::-1].tolist()]
    columns = [price_texts(getattr(bars, name)[::-1]) for name in ("open", "high", "low", "close")]
    row = '["%s",%s,%s,%s,%s,%d,%d]'
    return ",".join(
        [
            row % values
            for values in zip(
                stamps, *columns, bars.volume[::-1].tolist(), bars.oi[::-1].tolist(), strict=True
            )
        ]
    )
