"""Joining live snapshots to the candles collected after expiry: the key and minute rules.

A live instrument key (``NSE_FO|64411``) is the expired key (``NSE_FO|64411|27-06-2024``) without
the ``|DD-MM-YYYY`` expiry suffix, and a snapshot filed at capture minute M shows the market
after the 1-minute candle that *started* at M − 1 minute (candles are labelled by their start).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from expirytrack_dagster.live.store import SNAPSHOT_TABLE, session_file

CANDLE_LAG = timedelta(minutes=1)


def expired_key(instrument_key: str, expiry: date) -> str:
    """The expired-instrument key of a live contract of ``expiry``."""
    return f"{instrument_key}|{expiry:%d-%m-%Y}"


def candle_start(captured_at: datetime) -> datetime:
    """The start of the candle a snapshot at ``captured_at`` follows."""
    return captured_at - CANDLE_LAG


def snapshots_with_candles(live_dir: str | Path, day: date, database: str | Path) -> pd.DataFrame:
    """Every snapshot row of ``day`` beside the collected candle of the same contract and minute
    (``candle_*`` columns null where the contract did not trade in that minute or its expiry is
    not collected). Both files are opened read-only."""
    with duckdb.connect(str(session_file(live_dir, day)), read_only=True) as conn:
        conn.execute("SET TimeZone = 'Asia/Kolkata'")
        conn.execute(f"ATTACH '{Path(database)}' AS collected (READ_ONLY)")
        return conn.execute(
            f"""
            SELECT s.*, k.open AS candle_open, k.high AS candle_high, k.low AS candle_low,
                   k.close AS candle_close, k.volume AS candle_volume,
                   k.open_interest AS candle_open_interest
            FROM {SNAPSHOT_TABLE} s
            LEFT JOIN collected.candles k
              ON k.expired_instrument_key = s.instrument_key || '|' || strftime(s.expiry, '%d-%m-%Y')
             AND k."timestamp" = s.captured_at - INTERVAL 1 MINUTE
            ORDER BY s.captured_at, s.underlying_symbol, s.expiry, s.strike_price, s.option_type
            """
        ).df()
