"""Session rule: every candle starts inside its trading day's session, per the project calendar."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from expirytrack_dagster.calendar import Session
from expirytrack_dagster.quality._frames import (
    KEY,
    NS_PER_MINUTE,
    candle_clock,
    count_by_contract,
    dates_of,
    violation_samples,
)
from expirytrack_dagster.quality.result import Verdict, percent, top_rows
from expirytrack_dagster.quality.settings import QualitySettings, interval_minutes


def expected_candles(session: Session, interval: int | str = 1) -> int:
    """Candles a fully traded ``session`` has at ``interval`` (375 one-minute on a regular day).

    Bars start at the session open and every ``interval`` minutes after it; a last bar cut short
    by the close still counts (30-minute bars on a regular day: 09:15 ... 15:15 = 13). Daily
    candles: one per session.
    """
    minutes = interval_minutes(interval)
    if minutes is None:
        return 1
    return math.ceil(session.minutes / minutes)


def check_sessions(
    candles: pd.DataFrame, interval: int | str = 1, settings: QualitySettings | None = None
) -> Verdict:
    """WARN when a candle falls on a non-trading day, outside its day's session, or off the grid.

    Kinds: ``not_trading_day`` (holiday or weekend per calendar.py), ``outside_session`` (a
    trading day, but before the open or at/after the close), ``off_interval_grid`` (inside the
    session but not a whole number of intervals after the open). Special sessions (Muhurat,
    Saturday sessions) replace the day's hours, so 18:30 on a Muhurat day is valid and 10:00 is
    not. Daily candles are only checked for the day. WARN, not ERROR: a violation is more often
    a special session the calendar does not list yet than bad data, and nothing is dropped.
    """
    settings = settings or QualitySettings()
    minutes = interval_minutes(interval)
    clock = candle_clock(candles["timestamp"])
    sessions = clock.sessions
    trading = sessions.trading[clock.day_pos]
    masks = {"not_trading_day": ~trading}
    if minutes is not None:
        in_session = clock.in_session
        offset = clock.wall_ns - sessions.open_ns[clock.day_pos]
        masks["outside_session"] = trading & ~in_session
        masks["off_interval_grid"] = in_session & (offset % (minutes * NS_PER_MINUTE) != 0)
    bad = np.logical_or.reduce(list(masks.values())) if len(candles) else np.zeros(0, bool)
    violating = int(bad.sum())
    special = np.array([kind not in ("", "regular") for kind in sessions.kind], dtype=bool)
    counts = {"rows": len(candles), "violating_rows": violating}
    counts |= {kind: int(mask.sum()) for kind, mask in masks.items()}
    counts["special_session_rows"] = int((special[clock.day_pos] & ~bad).sum())
    # Beyond the maintained calendar weekdays are assumed to trade: say how much rests on that.
    counts["unverified_day_rows"] = int((~sessions.verified[clock.day_pos]).sum())
    worst = samples = None
    if violating:
        samples = violation_samples(candles, masks, settings.sample_rows)
        if samples is not None:
            shown = np.flatnonzero(bad)[: len(samples)]
            samples.insert(2, "trading_date", dates_of(clock.days[shown]))
        worst = top_rows(
            count_by_contract(candles[KEY][bad], "violating_rows"), settings.worst_contracts
        )
    return Verdict(
        passed=violating == 0,
        description="every candle starts inside its trading day's session (open <= start < close)",
        counts=counts,
        metrics={"violating_pct": percent(violating, len(candles))},
        worst=worst,
        samples=samples,
    )
