"""Synthetic underlying price paths: a daily close series and a one-minute path inside each session.

The daily closes come from one mean-reverting walk per (seed, underlying), so levels stay
plausible over decades; each session's intraday path is drawn from its own (seed, underlying,
date) stream and pinned to the day's close, so any day can be generated alone, in any order.
"""

from __future__ import annotations

import functools
import math
from datetime import date, timedelta

import numpy as np

from expirytrack_dagster.calendar import Session, is_trading_day
from expirytrack_dagster.sandbox.expiries import FIRST_DAY, LAST_DAY
from expirytrack_dagster.sandbox.profiles import UnderlyingProfile

POINTS_PER_MINUTE = 6
"""Price points simulated inside each minute; a minute's high and low are their extremes."""

TRADING_DAYS_PER_YEAR = 252
_REVERSION_PER_YEAR = 0.5  # half-life ~1.4 years: trends for months, never drifts off for good


def day_index(day: date) -> int:
    """Position of ``day`` in the sandbox's day arrays."""
    return (day - FIRST_DAY).days


@functools.cache
def trading_flags() -> np.ndarray:
    """Boolean per calendar day from ``FIRST_DAY`` to ``LAST_DAY``: does the F&O segment trade."""
    days = (LAST_DAY - FIRST_DAY).days + 1
    return np.fromiter(
        (is_trading_day(FIRST_DAY + timedelta(days=i)) for i in range(days)), bool, days
    )


@functools.cache
def _previous_trading_index() -> np.ndarray:
    flags = trading_flags()
    positions = np.where(flags, np.arange(flags.size), -1)
    last_seen = np.maximum.accumulate(positions)
    return np.concatenate(([-1], last_seen[:-1]))


def previous_trading_day(day: date) -> date | None:
    """The last trading day strictly before ``day`` (None before the sandbox's first)."""
    i = int(_previous_trading_index()[day_index(day)])
    return None if i < 0 else FIRST_DAY + timedelta(days=i)


def trading_days(start: date, end: date) -> list[date]:
    """Trading days from ``start`` to ``end``, both inclusive (clipped to the sandbox's range)."""
    start, end = max(start, FIRST_DAY), min(end, LAST_DAY)
    if start > end:
        return []
    lo = day_index(start)
    hits = np.flatnonzero(trading_flags()[lo : day_index(end) + 1])
    return [start + timedelta(days=int(i)) for i in hits]


@functools.lru_cache(maxsize=16)
def minute_weights(minutes: int) -> np.ndarray:
    """Relative activity of each minute of a session: busy at the open, busier into the close."""
    m = np.arange(minutes, dtype=np.float64)
    w = 1.0 + 1.6 * np.exp(-m / 12.0) + 0.7 * np.exp(-(minutes - 1 - m) / 18.0)
    w /= w.mean()
    w.flags.writeable = False  # shared by every caller through the cache
    return w


class DailyPath:
    """Closing levels of one underlying on every trading day, carried over non-trading days."""

    def __init__(self, profile: UnderlyingProfile, seed: int):
        flags = trading_flags()
        rng = np.random.default_rng([seed, profile.stable_id, 0xDA11])
        shocks = rng.standard_normal(flags.size)
        mean = math.log(profile.level)
        dt = 1.0 / TRADING_DAYS_PER_YEAR
        keep = 1.0 - _REVERSION_PER_YEAR * dt
        step = profile.volatility * math.sqrt(dt)
        log_close = np.empty(flags.size)
        current = mean
        for i, trades in enumerate(flags.tolist()):
            if trades:
                current = mean + keep * (current - mean) + step * shocks[i]
            log_close[i] = current
        self._close = np.exp(log_close)
        self.profile = profile
        self.seed = seed

    def close(self, day: date) -> float:
        """The close of ``day``, or of the last trading day before it."""
        return float(self._close[day_index(day)])

    def previous_close(self, day: date) -> float:
        """The close of the trading day before ``day`` (its own close on the very first day)."""
        prev = previous_trading_day(day)
        return self.close(day if prev is None else prev)

    def close_range(self, start: date, end: date) -> tuple[float, float]:
        """Lowest and highest close from ``start`` to ``end`` (both inclusive)."""
        window = self._close[day_index(max(start, FIRST_DAY)) : day_index(min(end, LAST_DAY)) + 1]
        return float(window.min()), float(window.max())

    def intraday(self, session: Session) -> np.ndarray:
        """The level at every simulated point of ``session`` (``POINTS_PER_MINUTE`` per minute).

        Opens with a small gap from the previous close and ends exactly on the day's close, via a
        Brownian bridge whose volatility follows the intraday activity profile.
        """
        day = session.trading_date
        rng = np.random.default_rng([self.seed, self.profile.stable_id, day.toordinal(), 1])
        daily_sd = self.profile.volatility / math.sqrt(TRADING_DAYS_PER_YEAR)
        start = math.log(self.previous_close(day)) + 0.25 * daily_sd * rng.standard_normal()
        end = math.log(self.close(day))
        minutes = session.minutes
        points = minutes * POINTS_PER_MINUTE
        weights = np.repeat(minute_weights(minutes), POINTS_PER_MINUTE)[1:]
        scale = daily_sd * 0.9 * weights / math.sqrt(float(np.dot(weights, weights)))
        walk = np.empty(points)
        walk[0] = 0.0
        np.cumsum(scale * rng.standard_normal(points - 1), out=walk[1:])
        variance = np.empty(points)
        variance[0] = 0.0
        np.cumsum(scale * scale, out=variance[1:])
        frac = variance / variance[-1]
        bridge = walk - frac * walk[-1]
        return np.exp(start + (end - start) * frac + bridge)
