"""A synthetic ~5M-row partition (and a dirty variant) for quality tests and the benchmark."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from expirytrack_dagster.calendar import IST, session_minute_index, sessions_between
from expirytrack_dagster.quality import PartitionScope

EXPIRY = date(2025, 8, 28)


def synthetic_partition(
    with_future: bool = True, sessions: int = 62, strikes: int = 107
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, PartitionScope]:
    """Every contract trades every minute of the last ``sessions`` trading days before expiry."""
    window = sessions_between(date(2025, 1, 1), EXPIRY)[-sessions:]
    minutes = pd.DatetimeIndex(np.concatenate([session_minute_index(s) for s in window]))
    strike_ladder = 25000.0 + 50.0 * (np.arange(strikes) - strikes // 2)
    kinds = ["CE", "PE"] * strikes
    strike_of = np.repeat(strike_ladder, 2)
    if with_future:
        kinds = ["FUT", *kinds]
        strike_of = np.concatenate([[np.nan], strike_of])
    keys = [f"NSE_FO|{40000 + i}|28-08-2025" for i in range(len(kinds))]
    contracts = pd.DataFrame(
        {
            "expired_instrument_key": keys,
            "instrument_type": kinds,
            "strike_price": strike_of,
            "expiry": EXPIRY,
            "lot_size": 75,
            "tick_size": [10.0 if k == "FUT" else 5.0 for k in kinds],
            "weekly": [None if k == "FUT" else not with_future for k in kinds],
            "underlying_symbol": "NIFTY",
            "trading_symbol": [f"NIFTY {s:g} {k}" for s, k in zip(strike_of, kinds, strict=True)],
        }
    )
    rng = np.random.default_rng(7)
    n = len(keys) * len(minutes)
    forward = np.tile(25000 + np.cumsum(rng.normal(0, 2, len(minutes))), len(keys))
    strike = np.repeat(np.nan_to_num(strike_of), len(minutes))
    is_call = np.repeat(np.array(kinds) == "CE", len(minutes))
    is_put = np.repeat(np.array(kinds) == "PE", len(minutes))
    close = np.where(
        is_call,
        np.maximum(forward - strike, 0) + 20,
        np.where(is_put, np.maximum(strike - forward, 0) + 20, forward),
    ) + rng.random(n)
    open_ = np.maximum(close + rng.normal(0, 0.5, n), 0.05)
    utc_starts = minutes.tz_convert("UTC").tz_localize(None).as_unit("ns")
    candles = pd.DataFrame(
        {
            "expired_instrument_key": np.repeat(np.array(keys, dtype=object), len(minutes)),
            "timestamp": np.tile(utc_starts, len(keys)),
            "open": open_,
            "high": np.maximum(open_, close) + rng.random(n),
            "low": np.maximum(np.minimum(open_, close) - rng.random(n), 0.05),
            "close": close,
            "volume": rng.integers(0, 5000, n),
            "open_interest": rng.integers(0, 100000, n),
            "partition_key": "NIFTY|2025-08-28",
        }
    )
    candles["timestamp"] = candles["timestamp"].dt.tz_localize("UTC").dt.tz_convert(IST)
    fetch = pd.DataFrame(
        {
            "expired_instrument_key": np.repeat(keys, len(window)),
            "trading_date": [s.trading_date for s in window] * len(keys),
            "status": "complete",
            "candle_count": np.tile([s.minutes for s in window], len(keys)),
            "error": None,
        }
    )
    scope = PartitionScope(
        expiry=EXPIRY, monthly=with_future, window_start=window[0].trading_date, window_end=EXPIRY
    )
    return candles, contracts, fetch, scope


def dirty(
    candles: pd.DataFrame, contracts: pd.DataFrame, fetch: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Thin strikes over 2,000 points from 25,000 to 30 % of minutes (the fetch recording what it
    got), then break 1 % of prices, duplicate 0.5 % of rows, move 1,000 candles onto a holiday
    and fail 3 fetches."""
    rng = np.random.default_rng(11)
    strike = candles["expired_instrument_key"].map(
        contracts.set_index("expired_instrument_key")["strike_price"]
    )
    far = (strike - 25000).abs() > 2000
    candles = candles[~far | (rng.random(len(candles)) < 0.3)].reset_index(drop=True)
    fetched = candles.groupby(
        ["expired_instrument_key", candles["timestamp"].dt.normalize().dt.date]
    ).size()
    fetch = fetch.copy()
    fetch["candle_count"] = fetched.reindex(
        pd.MultiIndex.from_frame(fetch[["expired_instrument_key", "trading_date"]]), fill_value=0
    ).to_numpy()
    broken = rng.random(len(candles)) < 0.01
    candles.loc[broken, ["high", "low"]] = candles.loc[broken, ["low", "high"]].to_numpy()
    repeats = candles.sample(frac=0.005, random_state=1)
    candles = pd.concat([candles, repeats], ignore_index=True)
    moved = candles.sample(1000, random_state=2).index
    candles.loc[moved, "timestamp"] = pd.Timestamp("2025-08-15 10:00", tz=IST)
    fetch.loc[fetch.index[:3], ["status", "candle_count", "error"]] = ["failed", 0, "timeout"]
    return candles, fetch
