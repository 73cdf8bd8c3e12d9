"""Each explorer page's numbers, read through the research API (no SQL twin of it).

Every function takes an open read-only connection and the page's URL parameters and returns a
plain dict for its template; ``benchmarks/bench_explorer.py`` times them.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from expirytrack_dagster import research
from expirytrack_dagster.calendar import IST
from expirytrack_dagster.partitions import build_partition_key
from expirytrack_dagster.research.api import CANDLE_INTERVAL, ResearchError
from expirytrack_dagster.research.asof import session_at, to_ist
from expirytrack_dagster.research.history import expiry_life, oi_change_grid, session_legs
from expirytrack_dagster.research.resample import INTERVAL_MINUTES

IST_OFFSET_S = 19_800
"""Chart times are shifted by IST's offset so the charting library's UTC axis reads IST."""
MAX_AGE_MINUTES = 5
"""A quote older than this is stale: shown with its age, and left out of the forward and IV."""


def _number(value: Any) -> float | None:
    """A JSON-safe float: None for NaN/None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def partitions(db: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The collected partitions, newest expiry first."""
    rows = db.execute(
        """
        SELECT partition_key, underlying_symbol, expiry, is_monthly FROM expiries
        WHERE partition_key IN (SELECT DISTINCT partition_key FROM contracts)
        ORDER BY expiry DESC, underlying_symbol
        """
    ).fetchall()
    return [
        {"key": k, "underlying": u, "expiry": e.isoformat(), "monthly": bool(m)}
        for k, u, e, m in rows
    ]


def last_minute(db: duckdb.DuckDBPyConnection, underlying: str, expiry: str) -> pd.Timestamp:
    """The partition's newest collected minute (IST): the pages' default ``at``."""
    key = build_partition_key(underlying.upper(), date.fromisoformat(expiry))
    (newest,) = db.execute(
        'SELECT max("timestamp") FROM candles WHERE partition_key = ? AND "interval" = ?',
        [key, CANDLE_INTERVAL],
    ).fetchone()
    if newest is None:
        raise ResearchError(
            f"partition {key} is not collected in this database (no candles): collect it with "
            f"`expirytrack backfill {underlying.upper()} --since {expiry} --until {expiry}`"
        )
    return to_ist(newest)


def _leg(row: pd.Series, side: str, forward: float) -> dict[str, Any]:
    strike = float(row["strike"])
    itm = math.isfinite(forward) and (strike < forward if side == "CE" else strike > forward)
    age = _number(row[f"{side}_age_minutes"])
    return {
        "oi": _number(row[f"{side}_oi"]),
        "oi_change": _number(row[f"{side}_oi_change"]),
        "volume": _number(row[f"{side}_session_volume"]),
        "iv": _number(row[f"{side}_iv"]),
        "ltp": _number(row[f"{side}_ltp"]),
        "age": age,
        "stale": age is not None and age > MAX_AGE_MINUTES,
        "itm": bool(itm),
    }


def chain_page(
    db: duckdb.DuckDBPyConnection, underlying: str, expiry: str, at: str | None
) -> dict[str, Any]:
    """The option chain at a minute: rows CE | strike | PE, header figures, the session slider."""
    minute = to_ist(at) if at else last_minute(db, underlying, expiry)
    chain = research.option_chain(
        underlying, expiry, minute, database=db, max_age_minutes=MAX_AGE_MINUTES
    )
    attrs = chain.attrs
    forward = float(attrs["forward"])
    session = session_at(attrs["at"])
    rows = [
        {
            "strike": float(row["strike"]),
            "atm": bool(row["is_atm"]),
            "CE": _leg(row, "CE", forward),
            "PE": _leg(row, "PE", forward),
        }
        for _, row in chain.iterrows()
    ]
    header = {
        name: _number(attrs[name])
        for name in (
            "forward",
            "future_price",
            "spot",
            "atm_strike",
            "atm_iv",
            "pcr_oi",
            "pcr_volume",
            "max_pain",
        )
    }
    opened = pd.Timestamp(session.open).tz_convert(IST)
    keys = {(c["strike"], c["type"]): c["key"] for c in contracts_of(db, attrs["partition_key"])}
    for row in rows:
        for side in ("CE", "PE"):
            row[side]["key"] = keys.get((row["strike"], side))
    return {
        "underlying": underlying.upper(),
        "expiry": expiry,
        "at": attrs["at"].strftime("%Y-%m-%d %H:%M"),
        "partition_key": attrs["partition_key"],
        "rows": rows,
        "header": header,
        "session_open": opened.strftime("%Y-%m-%d %H:%M"),
        "session_minutes": int((pd.Timestamp(session.close) - opened).total_seconds() // 60) - 1,
        "minute_index": int((attrs["at"] - opened).total_seconds() // 60),
    }


def _bars(frame: pd.DataFrame) -> dict[str, list]:
    times = (pd.DatetimeIndex(frame["timestamp"]).as_unit("s").asi8 + IST_OFFSET_S).tolist()
    return {
        "time": times,
        "open": frame["open"].round(4).tolist(),
        "high": frame["high"].round(4).tolist(),
        "low": frame["low"].round(4).tolist(),
        "close": frame["close"].round(4).tolist(),
        "volume": frame["volume"].astype("int64").tolist(),
        "oi": frame["open_interest"].astype("int64").tolist(),
    }


def contracts_of(db: duckdb.DuckDBPyConnection, partition_key: str) -> list[dict[str, Any]]:
    """The partition's contracts for the chart page's picker: future first, then by strike."""
    rows = db.execute(
        """
        SELECT expired_instrument_key, trading_symbol, instrument_type, strike_price
        FROM contracts WHERE partition_key = ?
        ORDER BY instrument_type <> 'FUT', strike_price, instrument_type
        """,
        [partition_key],
    ).fetchall()
    return [{"key": k, "symbol": s, "type": t, "strike": p} for k, s, t, p in rows]


def chart_page(
    db: duckdb.DuckDBPyConnection,
    contract: str,
    interval: str = "1minute",
    overlay: bool = False,
) -> dict[str, Any]:
    """A contract's candles, volume and OI at ``interval``; the partition's future as overlay."""
    if interval not in INTERVAL_MINUTES:
        raise ResearchError(f"interval {interval!r} is not one of {', '.join(INTERVAL_MINUTES)}")
    bars = research.candles(contract, interval, database=db)
    key = bars.attrs["partition_key"]
    listed = contracts_of(db, key)
    future = next((c for c in listed if c["type"] == "FUT"), None)
    series: dict[str, Any] = {"bars": _bars(bars), "overlay": None}
    if overlay and future is not None and future["key"] != bars.attrs["expired_instrument_key"]:
        series["overlay"] = _bars(research.candles(future["key"], interval, database=db))
    underlying, _, expiry = key.rpartition("_")
    return {
        "underlying": underlying,
        "expiry": expiry,
        "contract": bars.attrs["expired_instrument_key"],
        "symbol": bars.attrs["trading_symbol"],
        "partition_key": key,
        "interval": interval,
        "intervals": list(INTERVAL_MINUTES),
        "overlay": overlay,
        "contracts": listed,
        "series": series,
        "count": len(bars),
    }


def _heat(value: float | None, scale: float) -> str:
    """A cell colour: green for OI added, red for OI shed, white for none."""
    if value is None or scale <= 0:
        return "#f4f4f4"
    strength = min(abs(value) / scale, 1.0)
    fade = round(255 - 175 * strength)
    return f"rgb({fade},255,{fade})" if value > 0 else f"rgb(255,{fade},{fade})"


class LifeCache:
    """Each partition's :func:`session_legs` and :func:`expiry_life`, kept while the database
    file is unchanged (same size and modification time), for the last ``size`` partitions.

    Collected days are final, so an expiry's life only changes when a collection run writes the
    file; moving the OI page's minute then costs only the chain."""

    def __init__(self, path: Path, size: int = 8) -> None:
        self.path = Path(path)
        self.size = size
        self._kept: dict[tuple, tuple[pd.DataFrame, pd.DataFrame]] = {}

    def get(
        self, db: duckdb.DuckDBPyConnection, underlying: str, expiry: str
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        stat = self.path.stat()
        key = (stat.st_size, stat.st_mtime_ns, underlying.upper(), expiry)
        if key not in self._kept:
            legs = session_legs(underlying, expiry, database=db)
            self._kept[key] = (legs, expiry_life(underlying, expiry, legs=legs))
            while len(self._kept) > self.size:
                self._kept.pop(next(iter(self._kept)))
        return self._kept[key]


def oi_page(
    db: duckdb.DuckDBPyConnection,
    underlying: str,
    expiry: str,
    at: str | None,
    side: str = "all",
    *,
    history: LifeCache | None = None,
) -> dict[str, Any]:
    """OI by strike at a minute with its change, the expiry's PCR/max pain life, the OI-change
    heatmap (strikes x days) and the build-up class of each leg on ``at``'s day. ``history``
    keeps each partition's session rows while the database file is unchanged."""
    minute = to_ist(at) if at else last_minute(db, underlying, expiry)
    chain = research.option_chain(underlying, expiry, minute, database=db)
    if history is None:
        legs = session_legs(underlying, expiry, database=db)
        life = expiry_life(underlying, expiry, legs=legs)
    else:
        legs, life = history.get(db, underlying, expiry)
    day = chain.attrs["at"].date()
    legs = legs[legs["day"] <= day]
    life = life[life["day"] <= day]
    grid = oi_change_grid(legs, None if side == "all" else side)
    finite = grid.to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    scale = float(np.percentile(np.abs(finite), 95)) if finite.size else 0.0
    # Plain arrays, not iterrows: a 100-strike x 60-day heatmap is 6,000 cells.
    heat = [
        {
            "strike": float(strike),
            "cells": [{"value": v, "colour": _heat(v, scale)} for v in map(_number, row)],
        }
        for strike, row in zip(grid.index, grid.to_numpy(dtype=float).tolist(), strict=True)
    ]
    columns = ("strike", "is_atm", "CE_oi", "PE_oi", "CE_oi_change", "PE_oi_change")
    values = {name: chain[name].to_numpy().tolist() for name in columns}
    peak = float(np.nanmax(chain[["CE_oi", "PE_oi"]].to_numpy(dtype=float), initial=0.0))
    bars = []
    for strike, atm, ce, pe, ce_change, pe_change in zip(*values.values(), strict=True):
        ce, pe = _number(ce), _number(pe)
        bars.append(
            {
                "strike": float(strike),
                "atm": bool(atm),
                "CE": ce,
                "PE": pe,
                "CE_change": _number(ce_change),
                "PE_change": _number(pe_change),
                "CE_pct": 100 * (ce or 0) / peak if peak else 0,
                "PE_pct": 100 * (pe or 0) / peak if peak else 0,
            }
        )
    today = legs[(legs["day"] == day) & (legs["option_type"] != "FUT")]
    build = [
        {
            "strike": float(r.strike),
            "type": r.option_type,
            "price_change": _number(r.price_change),
            "oi_change": _number(r.oi_change),
            "class": str(r.build_up),
        }
        for r in today.itertuples()
    ]
    life_days = pd.to_datetime(life["day"]).dt.tz_localize(None).astype("int64") // 10**9
    return {
        "underlying": underlying.upper(),
        "expiry": expiry,
        "at": chain.attrs["at"].strftime("%Y-%m-%d %H:%M"),
        "partition_key": chain.attrs["partition_key"],
        "side": side,
        "bars": bars,
        "days": [d.isoformat() for d in grid.columns],
        "heat": heat,
        "build_up": build,
        "life": {
            "time": life_days.tolist(),
            "day": [d.isoformat() for d in life["day"]],
            "pcr_oi": [_number(v) for v in life["pcr_oi"]],
            "max_pain": [_number(v) for v in life["max_pain"]],
            "future_close": [_number(v) for v in life["future_close"]],
        },
        "max_pain": _number(chain.attrs["max_pain"]),
        "pcr_oi": _number(chain.attrs["pcr_oi"]),
    }


def tracker_page(
    db: duckdb.DuckDBPyConnection, underlying: str, expiry: str, at: str | None, strikes: int = 3
) -> dict[str, Any]:
    """The OI tracker (history mode): ATM ± ``strikes`` with OI change over 3-30 minutes."""
    minute = to_ist(at) if at else last_minute(db, underlying, expiry)
    tracker = research.oi_tracker(
        underlying, expiry, minute, strikes_around_atm=strikes, database=db
    )
    windows = [
        int(c[len("oi_chg_") : -1])
        for c in tracker.columns
        if c.startswith("oi_chg_") and "pct" not in c
    ]
    rows = [
        {
            "strike": float(r["strike"]),
            "type": r["option_type"],
            "atm": bool(r["is_atm"]),
            "oi": _number(r["oi"]),
            "changes": [
                (_number(r[f"oi_chg_{w}m"]), _number(r[f"oi_chg_pct_{w}m"])) for w in windows
            ],
        }
        for _, r in tracker.iterrows()
    ]
    return {
        "underlying": underlying.upper(),
        "expiry": expiry,
        "at": tracker.attrs["at"].strftime("%Y-%m-%d %H:%M"),
        "strikes": strikes,
        "windows": windows,
        "rows": rows,
        "forward": _number(tracker.attrs["forward"]),
    }


LIVE_REFRESH_S = 60
"""Live mode reloads the tracker page this often: the capture stores one snapshot a minute."""


def live_tracker_page(
    live_dir: Path | None, underlying: str, expiry: str | None, at: str | None, strikes: int = 3
) -> dict[str, Any]:
    """The OI tracker (live mode) from the live capture's snapshots: the newest capture minute at
    or before ``at`` (default now, and the page then reloads every minute), ATM nearest
    Upstox's spot, OI change over 3-30 minutes, LTP, IV, PCR and max pain (``live.view``)."""
    from expirytrack_dagster.live.view import LiveViewError, read_history, tracker

    if live_dir is None:
        raise ResearchError("live mode needs the live capture's snapshot folder (--live-dir)")
    now = pd.Timestamp.now(tz=IST)
    moment = to_ist(at) if at else now
    try:
        history = read_history(
            live_dir,
            underlying.upper(),
            moment.to_pydatetime(),
            date.fromisoformat(expiry) if expiry else None,
        )
        view = tracker(history, underlying.upper(), strikes)
    except LiveViewError as exc:
        raise ResearchError(str(exc)) from None
    rows = [
        {
            "strike": float(r["strike"]),
            "type": r["option_type"],
            "atm": bool(r["is_atm"]),
            "oi": _number(r["oi"]),
            "ltp": _number(r["ltp"]),
            "iv": _number(r["iv"]),
            "changes": [
                (_number(r[f"oi_chg_{w}m"]), _number(r[f"oi_chg_pct_{w}m"])) for w in view.windows
            ],
        }
        for _, r in view.rows.iterrows()
    ]
    age = (now if at is None else moment) - pd.Timestamp(view.minute)
    return {
        "mode": "live",
        "underlying": view.symbol,
        "expiry": view.expiry.isoformat(),
        "at": pd.Timestamp(view.minute).strftime("%Y-%m-%d %H:%M"),
        "asked": at,
        "age_s": max(0, int(age.total_seconds())),
        "refresh_s": None if at else LIVE_REFRESH_S,
        "strikes": strikes,
        "windows": list(view.windows),
        "rows": rows,
        "spot": _number(view.spot),
        "pcr": _number(view.pcr),
        "max_pain": _number(view.max_pain),
    }


def _verdict_colour(verdict: str, completeness: float | None) -> str:
    if verdict in ("failed", "not_collected"):
        return "#f4b6b6"
    if completeness is None:
        return "#eeeeee"
    return "#9fdc9f" if completeness >= 99.99 else "#f7e08a"


def coverage_page(db: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Underlyings x expiries coloured by completeness and check verdict; data freshness."""
    report = db.execute(
        """
        SELECT partition_key, underlying_symbol, expiry, completeness_pct, check_status,
               verdict, candles, collected_at
        FROM coverage_report ORDER BY underlying_symbol, expiry
        """
    ).fetchall()
    collected = {p["key"]: p for p in partitions(db)}
    rows: dict[str, list[dict[str, Any]]] = {}
    reported = set()
    for key, underlying, expiry, pct, check, verdict, count, collected_at in report:
        reported.add(key)
        rows.setdefault(underlying, []).append(
            {
                "key": key,
                "expiry": expiry.isoformat(),
                "completeness": _number(pct),
                "check": check,
                "verdict": verdict,
                "candles": int(count),
                "collected_at": collected_at.astimezone(IST).strftime("%Y-%m-%d %H:%M")
                if collected_at
                else None,
                "colour": _verdict_colour(verdict, _number(pct)),
                "linked": key in collected,
            }
        )
    for key, p in collected.items():
        if key not in reported:
            rows.setdefault(p["underlying"], []).append(
                {
                    "key": key,
                    "expiry": p["expiry"],
                    "completeness": None,
                    "check": "not reported",
                    "verdict": "not reported",
                    "candles": None,
                    "collected_at": None,
                    "colour": "#eeeeee",
                    "linked": True,
                }
            )
    for cells in rows.values():
        cells.sort(key=lambda c: c["expiry"])
    last_collection, newest = db.execute(
        """
        SELECT (SELECT max(checked_at) FROM expiries),
               (SELECT max("timestamp") FROM candles WHERE "interval" = ?)
        """,
        [CANDLE_INTERVAL],
    ).fetchone()
    return {
        "rows": dict(sorted(rows.items())),
        "last_collection": to_ist(last_collection).strftime("%Y-%m-%d %H:%M")
        if last_collection
        else None,
        "newest_data": to_ist(newest).strftime("%Y-%m-%d %H:%M") if newest else None,
    }
