"""An expiry's life day by day: each contract's session close, OI and volume, PCR and max pain.

The option chain answers "what did the chain look like at this minute"; these functions answer
"how did it get there": one row per contract and session (close, OI, volume, their change since
the previous session and the OI build-up class), and per session the put-call ratios and max pain
at the close beside the future's close. Same inputs and conventions as ``research.api`` (IST
sessions, read-only ``database=``)::

    from expirytrack_dagster.research.history import expiry_life, session_legs
    life = expiry_life("NIFTY", "2025-08-28")   # day, pcr_oi, pcr_volume, max_pain, future_close
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from expirytrack_dagster.research.api import (
    CANDLE_INTERVAL,
    Database,
    _expiry,
    _open,
    _partition,
)
from expirytrack_dagster.research.oi import build_up, max_pain_of, pcr_of

_IST_OFFSET_S = 19_800
"""IST is UTC+05:30 all year (no daylight saving): a candle's IST day is its epoch shifted by this."""

_SESSION_LAST = f"""
    SELECT expired_instrument_key, day_number, last.c AS close, last.oi AS oi, session_volume
    FROM (
        SELECT expired_instrument_key,
               ((epoch_us("timestamp") + {_IST_OFFSET_S * 1_000_000})
                    // 86_400_000_000)::INTEGER AS day_number,
               arg_max({{'c': close, 'oi': open_interest}}, "timestamp") AS last,
               sum(volume) AS session_volume
        FROM candles
        WHERE partition_key = ? AND "interval" = ?
        GROUP BY ALL
    )
"""
"""Each contract's last close and OI of each IST day (one ``arg_max`` of a struct, as
``research.api`` does), with that day's summed volume. The day is integer arithmetic on
``epoch_us`` (half the time of ``epoch``, a double, on a 3 M-candle partition)."""


def session_legs(underlying: str, expiry: date | str, *, database: Database = None) -> pd.DataFrame:
    """Every contract of the partition at each session's close, sorted by day, strike, type.

    Columns: ``day`` (date, IST), ``strike`` (float; NaN for the future), ``option_type``
    (``CE``, ``PE`` or ``FUT``), ``expired_instrument_key``, ``close`` (last traded price of the
    day), ``oi`` (OI of the last candle of the day), ``session_volume``, ``price_change`` and
    ``oi_change`` (vs the contract's previous traded session; NaN on its first), ``build_up``
    (``research.oi.build_up`` of those two changes). A contract with no trade on a day has no row
    for it. ``attrs``: ``partition_key``.
    """
    expiry = _expiry(expiry)
    with _open(database) as db:
        partition = _partition(db, underlying, expiry)
        rows = db.execute(_SESSION_LAST, [partition.key, CANDLE_INTERVAL]).fetchdf()
    contracts = partition.contracts.set_index("expired_instrument_key")
    where = contracts.index.get_indexer(rows["expired_instrument_key"])
    rows["strike"] = contracts["strike"].to_numpy(dtype=float)[where]
    rows["option_type"] = contracts["option_type"].to_numpy()[where]
    rows.loc[rows["option_type"] == "FUT", "strike"] = np.nan
    rows["day"] = (
        pd.Timestamp("1970-01-01") + pd.to_timedelta(rows["day_number"], unit="D")
    ).dt.date
    rows = rows.sort_values(["expired_instrument_key", "day_number"], ignore_index=True)
    grouped = rows.groupby("expired_instrument_key", sort=False)
    rows["price_change"] = grouped["close"].diff()
    rows["oi_change"] = grouped["oi"].diff()
    rows["build_up"] = build_up(rows["price_change"], rows["oi_change"])
    columns = [
        "day",
        "strike",
        "option_type",
        "expired_instrument_key",
        "close",
        "oi",
        "session_volume",
        "price_change",
        "oi_change",
        "build_up",
    ]
    out = rows.sort_values(["day_number", "strike", "option_type"], ignore_index=True)[columns]
    out.attrs["partition_key"] = partition.key
    return out


def expiry_life(
    underlying: str,
    expiry: date | str,
    *,
    database: Database = None,
    legs: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """PCR and max pain at each session's close through the life of the expiry.

    One row per IST day with any candle: ``day``, ``pcr_oi``, ``pcr_volume``, ``max_pain`` (as
    ``research.oi`` computes them on each contract's last OI of the day and the day's volume),
    ``future_close`` (the partition's future, NaN for a weekly without one). Pass ``legs`` (a
    :func:`session_legs` result) to reuse rows already read.
    """
    if legs is None:
        legs = session_legs(underlying, expiry, database=database)
    legs = legs.sort_values("day", kind="stable", ignore_index=True)
    days, starts = np.unique(legs["day"].to_numpy(), return_index=True)
    bounds = [*starts[1:], len(legs)]
    kind = legs["option_type"].to_numpy()
    # Plain arrays sliced per day into research.oi's array forms: no frame is built per day.
    strike = legs["strike"].to_numpy(dtype=float)
    oi = legs["oi"].to_numpy(dtype=float)
    close = legs["close"].to_numpy(dtype=float)
    volume = legs["session_volume"].to_numpy(dtype=float)
    rows = []
    for day, start, stop in zip(days, starts, bounds, strict=True):
        day_kind = kind[start:stop]
        is_option = day_kind != "FUT"
        side, day_oi = day_kind[is_option], oi[start:stop][is_option]
        future = close[start:stop][~is_option]
        rows.append(
            {
                "day": day,
                **pcr_of(side, day_oi, volume[start:stop][is_option]),
                "max_pain": max_pain_of(strike[start:stop][is_option], side == "CE", day_oi),
                "future_close": float(future[0]) if len(future) else np.nan,
            }
        )
    columns_out = ["day", "pcr_oi", "pcr_volume", "max_pain", "future_close"]
    return pd.DataFrame(rows, columns=columns_out)


def oi_change_grid(legs: pd.DataFrame, option_type: str | None = None) -> pd.DataFrame:
    """OI change since the previous session as a strikes × days table (a heatmap's cells).

    ``legs`` is a :func:`session_legs` result; ``option_type`` ``CE`` or ``PE`` keeps one side,
    None sums both. Index: strike ascending; columns: days; NaN where no contract of the strike
    traded that day or it is its first session.
    """
    options = legs[legs["option_type"] != "FUT"]
    if option_type is not None:
        options = options[options["option_type"] == option_type]
    summed = options.groupby(["strike", "day"])["oi_change"].sum(min_count=1)
    return summed.unstack("day").sort_index()
