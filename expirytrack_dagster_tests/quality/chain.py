"""A small hand-made partition for the day-grid and coverage tests: NIFTY 28 Aug 2025, 25-28 Aug.

27 Aug 2025 was a holiday (Ganesh Chaturthi), so the window has three trading days. Five strikes
around a future that closes at 24905 each day: with ``near_money_strikes=1`` the at-the-money
24900 and its neighbours 24850 and 24950 are near the money, 24800 and 25000 are far.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import pandas as pd

from expirytrack_dagster.quality import PartitionScope, QualitySettings, day_status
from expirytrack_dagster_tests.quality.frames import (
    EXPIRY,
    contract,
    contracts,
    fetch_status,
    key,
    session_candles,
)

DAYS = [date(2025, 8, 25), date(2025, 8, 26), date(2025, 8, 28)]
MON, TUE, THU = DAYS
SCOPE = PartitionScope(expiry=EXPIRY, monthly=True, window_start=MON, window_end=EXPIRY)
SETTINGS = QualitySettings(near_money_strikes=1)
FORWARD = 24905.0
STRIKES = [24800, 24850, 24900, 24950, 25000]

FUT = key(1)
CE = {strike: key(10 + i) for i, strike in enumerate(STRIKES)}
PE = {strike: key(20 + i) for i, strike in enumerate(STRIKES)}
FAR = [CE[24800], PE[24800], CE[25000], PE[25000]]

MONTHLY = contracts(
    [
        contract(1, "FUT"),
        *(contract(10 + i, "CE", s) for i, s in enumerate(STRIKES)),
        *(contract(20 + i, "PE", s) for i, s in enumerate(STRIKES)),
    ]
)
WEEKLY = MONTHLY[MONTHLY["instrument_type"] != "FUT"].assign(weekly=True)
FULL = range(375)

Slot = tuple[str, date]


def closing_price(instrument_key: str) -> float:
    """Closes consistent with put-call parity around FORWARD, so a weekly finds the same ATM."""
    for strike in STRIKES:
        if instrument_key == CE[strike]:
            return max(FORWARD - strike, 0.0) + 10.0
        if instrument_key == PE[strike]:
            return max(strike - FORWARD, 0.0) + 10.0
    return FORWARD


def partition(
    minutes: Mapping[Slot, Sequence[int]] | None = None,
    outcomes: Mapping[Slot, tuple[str, int, str | None] | None] | None = None,
    listed: pd.DataFrame = MONTHLY,
    interval_step: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Candles and fetch outcomes: every contract trades every minute unless ``minutes`` says
    otherwise; each outcome matches what is stored unless ``outcomes`` overrides it (None
    drops the row)."""
    minutes = minutes or {}
    outcomes = outcomes or {}
    frames, rows = [], []
    for instrument_key in listed["expired_instrument_key"]:
        for day in DAYS:
            traded = minutes.get((instrument_key, day), range(0, 375, interval_step))
            price = closing_price(instrument_key)
            frames.append(session_candles(instrument_key, day, price, traded))
            outcome = outcomes.get(
                (instrument_key, day),
                ("complete", len(traded), None) if len(traded) else ("no_trades", 0, None),
            )
            if outcome is not None:
                rows.append((instrument_key, day, *outcome))
    return pd.concat(frames, ignore_index=True), fetch_status(rows)


def days_of(
    minutes: Mapping[Slot, Sequence[int]] | None = None,
    outcomes: Mapping[Slot, tuple[str, int, str | None] | None] | None = None,
    listed: pd.DataFrame = MONTHLY,
    scope: PartitionScope = SCOPE,
    settings: QualitySettings = SETTINGS,
) -> pd.DataFrame:
    candles, fetched = partition(minutes, outcomes, listed)
    return day_status(candles, listed, fetched, scope, settings)


def row(days: pd.DataFrame, instrument_key: str, day: date) -> pd.Series:
    found = days[(days["expired_instrument_key"] == instrument_key) & (days["trading_date"] == day)]
    assert len(found) == 1
    return found.iloc[0]
