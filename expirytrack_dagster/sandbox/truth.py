"""Ground truth: every candle of an expiry's contracts, straight from the market model.

Built from the generated bars themselves, not from JSON and not through any HTTP, span limit or
fault, and without the client's parsing code (``upstox.models``), so a test comparing what the
pipeline stored against it checks the whole collection path.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.sandbox.candles import (
    CANDLE_COLUMNS,
    INTERVAL_MINUTES,
    aggregate,
    session_of,
)
from expirytrack_dagster.sandbox.contracts import ContractSpec
from expirytrack_dagster.sandbox.expiries import FIRST_DAY
from expirytrack_dagster.sandbox.paths import trading_days

if TYPE_CHECKING:
    from expirytrack_dagster.sandbox.market import SyntheticMarket

TRUTH_COLUMNS: tuple[str, ...] = ("expired_instrument_key", *CANDLE_COLUMNS)
"""Columns of a truth frame."""

INDEX_TRUTH_COLUMNS: tuple[str, ...] = (
    "underlying_key",
    "timestamp",
    "open",
    "high",
    "low",
    "close",
    "volume",
)
"""Columns of an index truth frame (the underlying's own candles carry no open interest)."""

_NS_PER_MINUTE = 60 * 1_000_000_000


def _epoch_ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000


def _stamps_ns(day: date, minutes: np.ndarray, interval: str) -> np.ndarray:
    """Epoch nanoseconds of each bar's start: session open + minute, or midnight for day bars."""
    if INTERVAL_MINUTES[interval] is None:
        midnight = _epoch_ns(datetime.combine(day, time(0, 0), tzinfo=IST))
        return np.full(minutes.size, midnight, dtype=np.int64)
    session = session_of(day)
    assert session is not None  # bars exist only on trading days
    return _epoch_ns(session.open) + minutes.astype(np.int64) * _NS_PER_MINUTE


def empty_truth() -> pd.DataFrame:
    """A truth frame with no rows and the proper dtypes."""
    return _frame([], np.zeros(0, np.int64), *([np.zeros(0, np.int64)] * 6))


def _frame(
    keys: list[str] | np.ndarray,
    stamps: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    oi: np.ndarray,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "expired_instrument_key": pd.Series(keys, dtype=object),
            "timestamp": pd.DatetimeIndex(stamps.view("M8[ns]")).tz_localize("UTC").tz_convert(IST),
            # Integer paise / 100 is the double nearest the decimal price, as JSON parsing gives.
            "open": open_ / 100.0,
            "high": high / 100.0,
            "low": low / 100.0,
            "close": close / 100.0,
            "volume": volume.astype(np.int64),
            "open_interest": oi.astype(np.int64),
        },
        columns=list(TRUTH_COLUMNS),
    )


def truth_candles(
    market: SyntheticMarket,
    specs: list[ContractSpec],
    interval: str,
    from_date: date | None,
    to_date: date | None,
) -> pd.DataFrame:
    """Every candle of ``specs`` from ``from_date`` to ``to_date`` (inclusive; None: the life).

    Sorted by ``expired_instrument_key`` then ``timestamp``; columns ``TRUTH_COLUMNS`` with
    ``timestamp`` timezone-aware IST, prices float64 rupees, volume and open interest int64.
    Contains exactly what the candle endpoint would serve for requests inside its span limit,
    with no fault: days after the market's ``today`` have no candles.
    """
    if interval not in INTERVAL_MINUTES:
        raise ValueError(f"unknown interval {interval!r}")
    parts: list[tuple[np.ndarray, ...]] = []
    counts: list[int] = []
    keys: list[str] = []
    for spec in sorted(specs, key=lambda s: s.expired_key):
        start = max(from_date or spec.listing, spec.listing, FIRST_DAY)
        end = min(to_date or spec.expiry, spec.expiry, market.today)
        rows = 0
        for day in trading_days(start, end):
            bars = aggregate(market.minute_bars(spec, day), interval)
            if not len(bars):
                continue
            rows += len(bars)
            parts.append(
                (
                    _stamps_ns(day, bars.minute, interval),
                    bars.open,
                    bars.high,
                    bars.low,
                    bars.close,
                    bars.volume,
                    bars.oi,
                )
            )
        if rows:
            keys.append(spec.expired_key)
            counts.append(rows)
    if not parts:
        return empty_truth()
    columns = [np.concatenate(column) for column in zip(*parts, strict=True)]
    return _frame(np.repeat(np.array(keys, dtype=object), counts), *columns)


def truth_index_candles(
    market: SyntheticMarket,
    underlying_key: str,
    interval: str,
    from_date: date,
    to_date: date,
) -> pd.DataFrame:
    """The underlying's own candles from ``from_date`` to ``to_date`` (inclusive), ascending.

    Columns ``INDEX_TRUTH_COLUMNS``: ``timestamp`` timezone-aware IST, prices float64 (rupees, or
    index points), volume int64 (0 for an index). Exactly what the V3 historical-candle endpoint
    serves for requests inside its span limit, with no fault; built from the model's bars.
    """
    if interval not in INTERVAL_MINUTES:
        raise ValueError(f"unknown interval {interval!r}")
    parts: list[tuple[np.ndarray, ...]] = []
    for day in trading_days(from_date, min(to_date, market.today)):
        bars = aggregate(market.underlying_minute_bars(underlying_key, day), interval)
        if len(bars):
            parts.append(
                (
                    _stamps_ns(day, bars.minute, interval),
                    bars.open,
                    bars.high,
                    bars.low,
                    bars.close,
                    bars.volume,
                )
            )
    columns = (
        [np.concatenate(column) for column in zip(*parts, strict=True)]
        if parts
        else [np.zeros(0, np.int64)] * 6
    )
    frame = _frame([underlying_key] * columns[0].size, *columns, columns[5])
    frame = frame.rename(columns={"expired_instrument_key": "underlying_key"})
    return frame[list(INDEX_TRUTH_COLUMNS)]
