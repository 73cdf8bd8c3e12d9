"""Continuous futures: the front-month future stitched across monthly expiries, with its roll rule.

Pure pandas (no Dagster, no database); ``assets/research.py`` feeds it every collected future.

**Front month and the roll rule.** Each monthly future ``F`` with expiry session ``E`` has a *last
front session* ``L``: with ``RollRule(sessions_before=0)`` ("on expiry") ``L = E``, so the expiring
future is used through its expiry session and the next one from the following session; with
``sessions_before=N`` ``L`` is the trading session N sessions before ``E`` (N=1: the next future
already supplies the expiry day). On a session ``d`` the front month is the future with the
smallest ``L >= d``. Sessions come from the exchange calendar (``expirytrack_dagster.calendar``),
so a day the data happens to lack does not move a roll.

**Unadjusted and back-adjusted.** ``open/high/low/close`` are the traded prices of the contract
named in ``expired_instrument_key`` (unadjusted: the series jumps at each roll by the calendar
spread). The back-adjusted ``adj_*`` columns remove those jumps by *difference* (additive)
adjustment: at each roll the gap ``new close - old close`` is measured at the last minute of the
old contract's last front session at which both contracts traded (if none, at each contract's
last candle on or before that session's close; if the new contract never traded by then, at its
first candle after); every price before the roll is shifted by that gap, and gaps add up going
back in time. The latest segment is therefore unadjusted (``adjustment = 0``), and differences
(returns in points, not percent) across a roll are continuous. Back-adjusted prices of old
contracts can be far from what traded, even negative in principle: use them for price changes,
use the unadjusted ones for levels.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise

import numpy as np
import pandas as pd

from expirytrack_dagster.calendar import IST, trading_days_between

PRICE_COLUMNS = ("open", "high", "low", "close")

FUTURE_COLUMNS = (
    "underlying_symbol",
    "partition_key",
    "expired_instrument_key",
    "expiry",
    "timestamp",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "open_interest",
)
"""What :func:`stitch` needs: every candle of every monthly future of one underlying."""

CONTINUOUS_COLUMNS = (
    "underlying_symbol",
    "timestamp",
    "session_date",
    "expired_instrument_key",
    "expiry",
    "partition_key",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "open_interest",
    "adjustment",
    "adj_open",
    "adj_high",
    "adj_low",
    "adj_close",
)
"""The stitched series, one row per minute the front-month future traded."""


@dataclass(frozen=True)
class RollRule:
    """When the continuous series moves to the next future: ``sessions_before`` its expiry
    session (0: "on expiry", the expiring future is used through its expiry session)."""

    sessions_before: int = 0

    def __post_init__(self) -> None:
        if self.sessions_before < 0:
            raise ValueError("sessions_before must be >= 0")

    def last_front_session(self, expiry: date) -> date:
        """The last session on which the future expiring on ``expiry`` is the front month."""
        if self.sessions_before == 0:
            return expiry
        # Enough calendar days to hold N sessions plus holidays.
        days = trading_days_between(expiry - timedelta(days=7 * self.sessions_before + 14), expiry)
        if days and days[-1] == expiry:
            return days[-1 - self.sessions_before]
        # An expiry that is not a trading session (never for real data): count from before it.
        return days[-self.sessions_before]

    def describe(self) -> str:
        """``on_expiry`` or ``sessions_before: N``, as in the settings file."""
        if self.sessions_before == 0:
            return "on_expiry"
        return f"sessions_before: {self.sessions_before}"


def session_dates(timestamps: pd.Series) -> pd.Series:
    """The IST trading date of each (timezone-aware) candle timestamp."""
    local = timestamps.dt.tz_convert(IST)
    return pd.Series(local.dt.date.to_numpy(), index=timestamps.index, name="session_date")


def front_month(expiries: pd.Series, sessions: pd.Series, rule: RollRule) -> pd.Series:
    """The expiry of the front-month future on each session (NaT-free: None beyond the last).

    ``expiries``: the distinct future expiries available; ``sessions``: trading dates.
    """
    ordered = sorted(set(expiries))
    last_front = np.array([np.datetime64(rule.last_front_session(e)) for e in ordered])
    days = sessions.to_numpy(dtype="datetime64[D]")
    position = np.searchsorted(last_front, days, side="left")
    chosen = [ordered[i] if i < len(ordered) else None for i in position]
    return pd.Series(chosen, index=sessions.index, name="front_expiry")


def stitch(futures: pd.DataFrame, rule: RollRule) -> pd.DataFrame:
    """The continuous front-month series of one or more underlyings (see the module docstring).

    ``futures`` has :data:`FUTURE_COLUMNS` (timestamps timezone-aware, ``expiry`` a date). The
    result has :data:`CONTINUOUS_COLUMNS`, sorted by underlying and timestamp.
    """
    if futures.empty:
        return _empty()
    parts = [
        _stitch_one(frame, rule)
        for _, frame in futures.groupby("underlying_symbol", sort=True, observed=True)
    ]
    return pd.concat(parts, ignore_index=True)[list(CONTINUOUS_COLUMNS)]


def _empty() -> pd.DataFrame:
    frame = pd.DataFrame({column: [] for column in CONTINUOUS_COLUMNS})
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).dt.tz_convert(IST)
    return frame


def _stitch_one(futures: pd.DataFrame, rule: RollRule) -> pd.DataFrame:
    frame = futures.copy()
    frame["expiry"] = pd.to_datetime(frame["expiry"]).dt.date
    frame["timestamp"] = frame["timestamp"].dt.tz_convert(IST)
    frame["session_date"] = session_dates(frame["timestamp"])
    frame["front_expiry"] = front_month(frame["expiry"], frame["session_date"], rule)
    front = frame[frame["expiry"] == frame["front_expiry"]]
    front = front.sort_values("timestamp", kind="stable").reset_index(drop=True)
    gaps = roll_differences(frame, front, rule)
    # Adjustment of a segment: the sum of the gaps of its own roll and every later one.
    by_expiry = dict(gaps.iloc[::-1].cumsum().iloc[::-1].items())
    front["adjustment"] = front["expiry"].map(by_expiry).fillna(0.0).astype("float64")
    for column in PRICE_COLUMNS:
        front[f"adj_{column}"] = front[column] + front["adjustment"]
    return front


def roll_differences(frame: pd.DataFrame, front: pd.DataFrame, rule: RollRule) -> pd.Series:
    """The gap ``new close - old close`` at each roll, indexed by the *old* segment's expiry;
    the last segment's entry is 0. ``frame`` holds every candle, ``front`` the stitched ones."""
    segments = list(dict.fromkeys(front["expiry"]))
    gaps = []
    for old, new in pairwise(segments):
        gaps.append(_gap(frame, old, new, rule.last_front_session(old)))
    gaps.append(0.0)
    return pd.Series(gaps, index=segments, dtype="float64")


def _gap(frame: pd.DataFrame, old: date, new: date, last_session: date) -> float:
    old_rows = frame[(frame["expiry"] == old) & (frame["session_date"] <= last_session)]
    new_rows = frame[frame["expiry"] == new]
    on_last = new_rows[new_rows["session_date"] == last_session]
    both = old_rows.loc[old_rows["session_date"] == last_session, ["timestamp", "close"]].merge(
        on_last[["timestamp", "close"]], on="timestamp", suffixes=("_old", "_new")
    )
    if not both.empty:
        last = both.loc[both["timestamp"].idxmax()]
        return float(last["close_new"] - last["close_old"])
    old_close = float(old_rows.loc[old_rows["timestamp"].idxmax(), "close"])
    before = new_rows[new_rows["session_date"] <= last_session]
    if not before.empty:
        return float(before.loc[before["timestamp"].idxmax(), "close"]) - old_close
    return float(new_rows.loc[new_rows["timestamp"].idxmin(), "close"]) - old_close


def rolls(series: pd.DataFrame) -> pd.DataFrame:
    """One row per roll of a stitched series: the contracts, the sessions either side, the gap
    applied, and ``missing_sessions``: trading sessions between them that have no candle."""
    rows = []
    for symbol, frame in series.groupby("underlying_symbol", sort=True):
        by_segment = frame.groupby("expiry", sort=True).agg(
            contract=("expired_instrument_key", "first"),
            first_session=("session_date", "min"),
            last_session=("session_date", "max"),
            adjustment=("adjustment", "first"),
        )
        segments = list(by_segment.itertuples())
        for old, new in pairwise(segments):
            between = trading_days_between(
                old.last_session + timedelta(days=1), new.first_session - timedelta(days=1)
            )
            rows.append(
                {
                    "underlying_symbol": symbol,
                    "from_contract": old.contract,
                    "to_contract": new.contract,
                    "last_session_old": old.last_session,
                    "first_session_new": new.first_session,
                    "gap": old.adjustment - new.adjustment,
                    "missing_sessions": len(between),
                }
            )
    columns = [
        "underlying_symbol",
        "from_contract",
        "to_contract",
        "last_session_old",
        "first_session_new",
        "gap",
        "missing_sessions",
    ]
    return pd.DataFrame(rows, columns=columns)
