"""Time to expiry for option pricing: ACT/365 years from a timestamp to the expiry session's close."""

from __future__ import annotations

from datetime import date, datetime, time

import numpy as np
import pandas as pd

from expirytrack_dagster.calendar import IST, REGULAR_CLOSE, session_for

SECONDS_PER_YEAR = 365.0 * 86400.0


def expiry_close(expiry: date) -> datetime:
    """When the expiry session closes (IST): the calendar's real close, else 15:30."""
    session = session_for(expiry)
    if session is not None:
        return session.close
    return datetime.combine(expiry, time(REGULAR_CLOSE.hour, REGULAR_CLOSE.minute), tzinfo=IST)


def years_to_expiry(timestamps: pd.Series, expiry: date) -> np.ndarray:
    """ACT/365 years from each (timezone-aware) timestamp to the close of ``expiry``'s session.

    Calendar seconds, not trading minutes: ``(close − timestamp).total_seconds() / (365·86400)``.
    Negative after the close; NaN where a timestamp is missing.
    """
    stamps = pd.DatetimeIndex(timestamps).as_unit("ns")
    if stamps.tz is None:
        raise ValueError("years_to_expiry needs timezone-aware timestamps (IST or UTC)")
    close = pd.Timestamp(expiry_close(expiry)).value
    nanoseconds = (close - stamps.asi8).astype(float)
    nanoseconds[stamps.isna()] = np.nan
    return nanoseconds / 1e9 / SECONDS_PER_YEAR
