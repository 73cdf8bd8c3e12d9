"""The live OI tracker view over stored snapshots: ATM ± N strikes, OI change over 3–30 minutes.

The definitions are the research layer's (``research.oi``), applied to snapshots instead of
candles. The view stands at the newest capture minute ``M`` at or before the requested moment.
For a window of ``w`` minutes the earlier OI is that of the newest snapshot at or before
``M − w`` in the same session (NaN when there is none: the capture had not started); change =
OI at ``M`` − earlier OI, in % of the earlier OI. ATM is the listed strike nearest Upstox's
``underlying_spot`` (a tie goes to the lower strike). PCR is Σ PE OI / Σ CE OI over the whole
chain at ``M``; max pain is ``research.oi.max_pain`` of the chain at ``M``.

An expiry that was never captured live (every expiry before the capture started) is replayed from
its collected 1-minute candles instead (:func:`candle_tracker`): the same frame, built by the
research layer's ``oi_tracker`` and ``option_chain`` at the asked minute. Its ATM is the strike
nearest the synthetic forward (candles carry no spot), its IV the research layer's Black-76 IV,
and its PCR and max pain those of the option chain at that minute.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.live.store import LOG_TABLE, SNAPSHOT_TABLE, connect, session_file
from expirytrack_dagster.research.oi import TRACKER_WINDOWS, max_pain

_COLUMNS = "captured_at, expiry, strike_price, option_type, instrument_key, oi, ltp, iv"


class LiveViewError(Exception):
    """Nothing to show (no snapshot file, underlying or expiry); the message says what is missing."""


@dataclass(frozen=True)
class LiveTracker:
    """One frame of the tracker: the rows and what the header shows."""

    symbol: str
    expiry: date
    minute: datetime  # the newest capture minute shown
    atm_strike: float
    spot: float
    pcr: float
    max_pain: float
    rows: pd.DataFrame  # strike, option_type, oi, ltp, iv, is_atm, oi_chg_{w}m, oi_chg_pct_{w}m
    windows: tuple[int, ...]
    source: str = "live"  # "live" (snapshots) or "candles" (replayed from collected candles)


def read_history(
    live_dir: str | Path,
    symbol: str,
    at: datetime,
    expiry: date | None = None,
    windows: Sequence[int] = TRACKER_WINDOWS,
) -> pd.DataFrame:
    """The snapshots the tracker needs: ``symbol``'s chain (one ``expiry``, default the nearest
    stored) at the newest capture minute at or before ``at`` and, per window ``w``, at the newest
    one at or before ``w`` minutes earlier. Minutes come from the small ``capture_log``, so only
    those few chains are read, however long the day's file is."""
    at = at.astimezone(IST)
    path = session_file(live_dir, at.date())
    if not path.exists():
        raise LiveViewError(f"no live snapshots for {at:%Y-%m-%d} ({path} does not exist)")
    with connect(path, read_only=True) as conn:
        logged = conn.execute(
            f"SELECT expiry, captured_at FROM {LOG_TABLE} WHERE underlying_symbol = ? "
            "AND captured_at <= ? ORDER BY expiry, captured_at",
            [symbol, at],
        ).fetchall()
        if expiry is None and logged:
            expiry = logged[0][0]
        stamps = [pd.Timestamp(a).value for e, a in logged if e == expiry]
        if not stamps:
            what = f"{symbol} {expiry}" if expiry else symbol
            raise LiveViewError(f"no snapshots of {what} on {at:%Y-%m-%d} by {at:%H:%M}")
        minutes = np.asarray(stamps, dtype=np.int64)
        newest = int(minutes[-1])
        needed = {newest}
        for w in windows:
            earlier = minutes[minutes <= newest - w * 60 * 1_000_000_000]
            if earlier.size:
                needed.add(int(earlier[-1]))
        wanted = [pd.Timestamp(n, tz="UTC").to_pydatetime() for n in sorted(needed)]
        marks = ", ".join("?" for _ in wanted)
        return conn.execute(
            f"SELECT {_COLUMNS}, underlying_spot FROM {SNAPSHOT_TABLE} "
            f"WHERE underlying_symbol = ? AND expiry = ? AND captured_at IN ({marks}) "
            "AND captured_at BETWEEN ? AND ? ORDER BY captured_at",  # the range prunes row groups
            [symbol, expiry, *wanted, wanted[0], wanted[-1]],
        ).df()


def tracker(
    history: pd.DataFrame,
    symbol: str,
    strikes_around_atm: int = 3,
    windows: Sequence[int] = TRACKER_WINDOWS,
) -> LiveTracker:
    """The tracker at the newest minute of ``history`` (rows of one underlying and expiry)."""
    stamps = pd.DatetimeIndex(history["captured_at"]).tz_convert(IST).as_unit("ns")
    minutes = np.unique(stamps.asi8)
    newest = minutes[-1]
    now_rows = history[stamps.asi8 == newest].set_index("instrument_key")
    spot = float(now_rows["underlying_spot"].iloc[0])
    listed = np.unique(now_rows["strike_price"].to_numpy(dtype=float))
    atm = float(listed[np.argmin(np.abs(listed - spot))])  # argmin: a tie goes to the lower
    position = int(np.searchsorted(listed, atm))
    shown = listed[max(0, position - strikes_around_atm) : position + strikes_around_atm + 1]
    chain = now_rows.rename(columns={"strike_price": "strike"})
    oi = chain["oi"].astype(float)
    calls, puts = oi[chain["option_type"] == "CE"].sum(), oi[chain["option_type"] == "PE"].sum()
    rows = chain[chain["strike"].isin(shown)][["strike", "option_type", "oi", "ltp", "iv"]].copy()
    rows["oi"] = rows["oi"].astype(float)
    rows["is_atm"] = rows["strike"] == atm
    for w in windows:
        earlier = minutes[minutes <= newest - w * 60 * 1_000_000_000]
        if earlier.size:
            then_rows = history[stamps.asi8 == earlier[-1]].set_index("instrument_key")
            then = then_rows["oi"].astype(float).reindex(rows.index)
        else:
            then = pd.Series(np.nan, index=rows.index)
        change = rows["oi"] - then
        rows[f"oi_chg_{w}m"] = change
        rows[f"oi_chg_pct_{w}m"] = np.where(then != 0, 100.0 * change / then, np.nan)
    rows = rows.sort_values(["strike", "option_type"]).reset_index()
    return LiveTracker(
        symbol=symbol,
        expiry=pd.Timestamp(history["expiry"].iloc[0]).date(),
        minute=pd.Timestamp(newest, tz="UTC").tz_convert(IST).to_pydatetime(),
        atm_strike=atm,
        spot=spot,
        pcr=float(puts / calls) if calls > 0 else math.nan,
        max_pain=max_pain(chain.reset_index()),
        rows=rows,
        windows=tuple(windows),
    )


def candle_tracker(
    symbol: str,
    at: datetime,
    expiry: date | None = None,
    strikes_around_atm: int = 3,
    windows: Sequence[int] = TRACKER_WINDOWS,
    *,
    database: str | Path | None = None,
) -> LiveTracker:
    """The tracker at minute ``at`` replayed from the collected candles of ``symbol``'s
    ``expiry`` (default: the nearest collected expiry on or after ``at``'s day).

    OI and its changes are ``research.oi_tracker``'s; LTP, IV (in %, as Upstox sends it live),
    PCR (OI) and max pain are ``research.option_chain``'s at the same minute.
    """
    from expirytrack_dagster.research.api import (
        ResearchError,
        oi_tracker,
        open_database,
        option_chain,
    )

    at = at.astimezone(IST)
    try:
        db = open_database(database)
    except ResearchError as exc:
        raise LiveViewError(str(exc)) from None
    with db:
        if expiry is None:
            found = db.execute(
                "SELECT min(expiry) FROM expiries WHERE underlying_symbol = ? AND expiry >= ?",
                [symbol, at.date()],
            ).fetchone()
            if found is None or found[0] is None:
                raise LiveViewError(
                    f"no live snapshots and no collected {symbol} expiry on or after "
                    f"{at:%Y-%m-%d} to replay from candles"
                )
            expiry = found[0]
        try:
            chain = option_chain(symbol, expiry, at, database=db)
            moves = oi_tracker(symbol, expiry, at, windows, strikes_around_atm, database=db)
        except ResearchError as exc:
            raise LiveViewError(str(exc)) from None
    legs = pd.concat(
        [
            pd.DataFrame(
                {
                    "strike": chain["strike"].to_numpy(dtype=float),
                    "option_type": side,
                    "ltp": chain[f"{side}_ltp"].to_numpy(dtype=float),
                    "iv": 100.0 * chain[f"{side}_iv"].to_numpy(dtype=float),
                }
            )
            for side in ("CE", "PE")
        ]
    )
    rows = moves.merge(legs, on=["strike", "option_type"], how="left")
    rows = rows[
        ["strike", "option_type", "oi", "ltp", "iv", "is_atm"]
        + [c for c in moves.columns if c.startswith("oi_chg")]
    ]
    attrs = chain.attrs
    spot = attrs["spot"] if math.isfinite(attrs["spot"]) else attrs["forward"]
    return LiveTracker(
        symbol=symbol,
        expiry=expiry,
        minute=pd.Timestamp(attrs["at"]).tz_convert(IST).to_pydatetime(),
        atm_strike=float(moves.attrs["atm_strike"]),
        spot=float(spot),
        pcr=float(attrs["pcr_oi"]),
        max_pain=float(attrs["max_pain"]),
        rows=rows.sort_values(["strike", "option_type"]).reset_index(drop=True),
        windows=tuple(windows),
        source="candles",
    )


def _num(value: float, digits: int = 0) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"


def _chg(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:+,.0f}"


def _pct(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:+.2f}%"


def format_tracker(view: LiveTracker, now: datetime) -> str:
    """The terminal frame: header (PCR, max pain, age of the newest snapshot), then one row per
    contract with OI, LTP, IV and the OI change per window; the ATM strike marked ``*``."""
    age = max(0, int((now - view.minute).total_seconds()))
    what = "snapshot" if view.source == "live" else "collected 1-minute candles as of this minute"
    lines = [
        f"{view.symbol} {view.expiry}  {view.source}  {view.minute:%Y-%m-%d %H:%M} IST  "
        + (
            f"(snapshot {age // 60}m {age % 60:02d}s old)" if view.source == "live" else f"({what})"
        ),
        f"spot {_num(view.spot, 2)}   ATM {_num(view.atm_strike)}   PCR (chain) "
        f"{_num(view.pcr, 2)}   max pain {_num(view.max_pain)}",
        f"{'Strike':>9} {'Type':<5} {'OI':>12} {'LTP':>9} {'IV%':>6}"
        + "".join(f" {f'{w}m chg':>10} {f'{w}m %':>8}" for w in view.windows),
    ]
    for row in view.rows.itertuples(index=False):
        mark = "*" if row.is_atm else " "
        text = (
            f"{_num(row.strike):>9} {row.option_type + mark:<5} {_num(row.oi):>12} "
            f"{_num(row.ltp, 2):>9} {_num(row.iv, 1):>6}"
        )
        for w in view.windows:
            text += f" {_chg(getattr(row, f'oi_chg_{w}m')):>10} {_pct(getattr(row, f'oi_chg_pct_{w}m')):>8}"
        lines.append(text)
    earlier = "snapshot" if view.source == "live" else "OI"
    lines.append(f"* ATM strike; OI change vs the newest {earlier} at or before N minutes earlier")
    return "\n".join(line.rstrip() for line in lines)
