"""Builders for the small hand-made frames the quality tests use, in the stored schema."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

import numpy as np
import pandas as pd

from expirytrack_dagster.calendar import IST, session_for, session_minute_index
from expirytrack_dagster.upstox.models import CANDLE_COLUMNS

EXPIRY = date(2025, 8, 28)


def key(token: int, expiry: date = EXPIRY) -> str:
    """An expired instrument key in Upstox's format (DD-MM-YYYY inside the key)."""
    return f"NSE_FO|{token}|{expiry:%d-%m-%Y}"


def ts(text: str) -> pd.Timestamp:
    """An IST timestamp from ``"YYYY-MM-DD HH:MM"``."""
    return pd.Timestamp(text, tz=IST)


def candles(rows: Iterable[tuple]) -> pd.DataFrame:
    """Candles from ``(key, "YYYY-MM-DD HH:MM", open, high, low, close, volume, oi)`` tuples."""
    frame = pd.DataFrame(
        list(rows),
        columns=["expired_instrument_key", *CANDLE_COLUMNS],
    )
    frame["timestamp"] = (
        pd.to_datetime(frame["timestamp"], format="ISO8601").dt.tz_localize(IST).dt.as_unit("ns")
    )
    frame = frame.astype(
        {c: "float64" for c in ("open", "high", "low", "close")}
        | {"volume": "int64", "open_interest": "int64"}
    )
    frame["partition_key"] = "NIFTY|2025-08-28"  # extra stored columns must be ignored
    return frame


def session_candles(
    instrument_key: str,
    day: date,
    price: float,
    minutes: Sequence[int] | None = None,
    closing: float | None = None,
) -> pd.DataFrame:
    """Flat one-minute candles at ``price`` for the given minute offsets of ``day``'s session.

    All minutes when ``minutes`` is None. ``closing`` sets the last candle's close (the day's
    close, which decides the at-the-money strike).
    """
    session = session_for(day)
    assert session is not None, f"{day} does not trade"
    starts = session_minute_index(session)
    if minutes is not None:
        starts = starts[list(minutes)]
    n = len(starts)
    close = np.full(n, price)
    if closing is not None and n:
        close[-1] = closing
    return pd.DataFrame(
        {
            "expired_instrument_key": instrument_key,
            "timestamp": starts.as_unit("ns"),
            "open": np.full(n, price),
            "high": np.maximum(close, price),
            "low": np.minimum(close, price),
            "close": close,
            "volume": np.full(n, 10, dtype=np.int64),
            "open_interest": np.full(n, 1000, dtype=np.int64),
        }
    )


def contract(
    token: int,
    kind: str,
    strike: float | None = None,
    expiry: date = EXPIRY,
    lot_size: int = 75,
    tick_size: float | None = None,
    weekly: bool | None = False,
) -> dict:
    """One contract row; tick size defaults to the real 5 paise (options) / 10 paise (future)."""
    return {
        "expired_instrument_key": key(token, expiry),
        "instrument_type": kind,
        "strike_price": np.nan if strike is None else float(strike),
        "expiry": expiry,
        "lot_size": lot_size,
        "tick_size": (10.0 if kind == "FUT" else 5.0) if tick_size is None else tick_size,
        "weekly": None if kind == "FUT" else weekly,
        "underlying_symbol": "NIFTY",
        "trading_symbol": f"NIFTY {'' if strike is None else f'{strike:g} '}{kind} {expiry:%d %b %y}",
    }


def contracts(rows: Iterable[dict]) -> pd.DataFrame:
    """A contracts frame from :func:`contract` rows."""
    return pd.DataFrame(list(rows))


def fetch_status(rows: Iterable[tuple]) -> pd.DataFrame:
    """Fetch outcomes from ``(key, date, status, candle_count, error)`` tuples."""
    return pd.DataFrame(
        list(rows),
        columns=["expired_instrument_key", "trading_date", "status", "candle_count", "error"],
    ).astype({"candle_count": "int64"})
