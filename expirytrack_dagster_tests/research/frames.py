"""Small hand-made candle frames for the research tests (IST times, one row per traded minute)."""

from __future__ import annotations

import pandas as pd

IST = "Asia/Kolkata"


def ist(text: str) -> pd.Timestamp:
    """``"2025-08-14 10:30"`` as an IST timestamp."""
    return pd.Timestamp(text, tz=IST)


def candle_frame(rows: list[tuple]) -> pd.DataFrame:
    """Rows of (key, time, close, volume, oi, strike, type) → a candles frame (OHLC = close)."""
    frame = pd.DataFrame(
        rows,
        columns=[
            "expired_instrument_key",
            "timestamp",
            "close",
            "volume",
            "open_interest",
            "strike",
            "option_type",
        ],
    )
    frame["timestamp"] = frame["timestamp"].map(ist)
    frame["open"] = frame["high"] = frame["low"] = frame["close"]
    return frame
