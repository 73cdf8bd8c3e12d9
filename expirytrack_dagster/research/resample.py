"""Resampling one-minute candles to longer bars aligned to the session open, never across sessions."""

from __future__ import annotations

import pandas as pd

from expirytrack_dagster.calendar import IST, session_for

INTERVAL_MINUTES: dict[str, int | None] = {
    "1minute": 1,
    "3minute": 3,
    "5minute": 5,
    "10minute": 10,
    "15minute": 15,
    "30minute": 30,
    "60minute": 60,
    "day": None,
}
"""Accepted intervals (Upstox's names) and their length in minutes; ``day`` is one whole session."""

_AGGREGATES = {
    "open": "first",
    "high": "max",
    "low": "min",
    "close": "last",
    "volume": "sum",
    "open_interest": "last",
}


def _session_opens(stamps: pd.Series) -> pd.Series:
    """The open (IST) of the session of each timestamp's trading date (09:15 on a regular day)."""
    days = stamps.dt.date
    opens = {}
    for day in days.unique():
        session = session_for(day)
        opens[day] = (
            pd.Timestamp(session.open)
            if session is not None
            else pd.Timestamp(day).tz_localize(IST) + pd.Timedelta(hours=9, minutes=15)
        )
    return days.map(opens)


def resample(candles: pd.DataFrame, interval: str) -> pd.DataFrame:
    """Candles at ``interval`` from one-minute ``candles``: one bar per contract and period.

    Input: columns ``timestamp`` (tz-aware, candle start), ``open``, ``high``, ``low``,
    ``close``, ``volume``, ``open_interest``, and optionally ``expired_instrument_key`` (bars are
    then per contract). Bars are aligned to the session open (09:15 IST on a regular day): a
    5-minute bar covers 09:15-09:19, a 60-minute bar 09:15-10:14, and the session's last bar is
    partial (15:15-15:29 for 60 minutes). A bar never spans two sessions; ``day`` is the whole
    session. Open is the first candle's open, high the max, low the min, close the last close,
    volume the sum, OI the last. Minutes without a candle add nothing, and a period without any
    candle has no bar. Output: the same columns, ``timestamp`` = bar start (for ``day``: the
    session open) in IST, sorted by contract and time.
    """
    if interval not in INTERVAL_MINUTES:
        raise ValueError(f"interval {interval!r} is not one of {', '.join(INTERVAL_MINUTES)}")
    stamps = pd.to_datetime(candles["timestamp"]).dt.tz_convert(IST)
    by_contract = "expired_instrument_key" in candles.columns
    keys = ["expired_instrument_key"] if by_contract else []
    frame = candles.assign(timestamp=stamps).sort_values([*keys, "timestamp"])
    minutes = INTERVAL_MINUTES[interval]
    if minutes == 1:
        return frame[[*keys, "timestamp", *_AGGREGATES]].reset_index(drop=True)
    opens = _session_opens(frame["timestamp"])
    if minutes is None:
        start = opens
    else:
        period = pd.Timedelta(minutes=minutes)
        start = opens + ((frame["timestamp"] - opens) // period) * period
    frame = frame.assign(timestamp=pd.to_datetime(start).dt.tz_convert(IST))
    bars = frame.groupby([*keys, "timestamp"], sort=True).agg(_AGGREGATES)
    return bars.reset_index()
