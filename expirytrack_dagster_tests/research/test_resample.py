"""Resampling at session edges: bars start at 09:15, the last one is partial, sessions never merge."""

from __future__ import annotations

import pandas as pd
import pytest

from expirytrack_dagster.research.resample import resample
from expirytrack_dagster_tests.research.frames import ist


def minutes(rows: list[tuple[str, float, int, int]], key: str | None = None) -> pd.DataFrame:
    """(time, price, volume, oi) rows; high = price + 1, low = price - 1."""
    frame = pd.DataFrame(rows, columns=["timestamp", "close", "volume", "open_interest"])
    frame["timestamp"] = frame["timestamp"].map(ist)
    frame["open"] = frame["close"] - 0.5
    frame["high"] = frame["close"] + 1
    frame["low"] = frame["close"] - 1
    if key is not None:
        frame.insert(0, "expired_instrument_key", key)
    return frame


DAY = minutes(
    [
        ("2025-08-14 09:15", 100.0, 1, 10),
        ("2025-08-14 09:16", 103.0, 2, 11),
        ("2025-08-14 09:19", 99.0, 3, 12),
        ("2025-08-14 09:20", 101.0, 4, 13),
        ("2025-08-14 10:14", 105.0, 5, 14),
        ("2025-08-14 10:15", 106.0, 6, 15),
        ("2025-08-14 15:29", 110.0, 7, 16),
        ("2025-08-18 09:15", 120.0, 8, 17),  # next session (Monday)
    ]
)


def test_five_minute_bars_start_at_the_open() -> None:
    bars = resample(DAY, "5minute")
    first = bars.iloc[0]
    assert first["timestamp"] == ist("2025-08-14 09:15")
    assert (first["open"], first["high"], first["low"], first["close"]) == (99.5, 104.0, 98.0, 99.0)
    assert first["volume"] == 6 and first["open_interest"] == 12
    assert bars.iloc[1]["timestamp"] == ist("2025-08-14 09:20")


def test_sixty_minute_bars_run_0915_to_1014_and_the_last_is_partial() -> None:
    bars = resample(DAY, "60minute").set_index("timestamp")
    assert list(bars.index) == [
        ist("2025-08-14 09:15"),
        ist("2025-08-14 10:15"),
        ist("2025-08-14 15:15"),  # 15:15-15:29: fifteen minutes, partial
        ist("2025-08-18 09:15"),
    ]
    assert bars.loc[ist("2025-08-14 09:15"), "volume"] == 1 + 2 + 3 + 4 + 5  # 10:14 included
    assert bars.loc[ist("2025-08-14 09:15"), "close"] == 105.0
    assert bars.loc[ist("2025-08-14 15:15"), "close"] == 110.0


def test_two_sessions_never_merge_and_day_bars_are_sessions() -> None:
    # A 3-minute grid from 09:15 puts 15:27-15:29 in one bar; Monday's 09:15 starts afresh.
    three = resample(DAY, "3minute")
    assert three.iloc[-2]["timestamp"] == ist("2025-08-14 15:27")
    assert three.iloc[-1]["timestamp"] == ist("2025-08-18 09:15")
    day = resample(DAY, "day")
    assert list(day["timestamp"]) == [ist("2025-08-14 09:15"), ist("2025-08-18 09:15")]
    assert day.iloc[0]["volume"] == 28 and day.iloc[0]["open_interest"] == 16
    assert (day.iloc[0]["open"], day.iloc[0]["close"]) == (99.5, 110.0)
    assert (day.iloc[0]["high"], day.iloc[0]["low"]) == (111.0, 98.0)


def test_bars_are_per_contract_and_labels_are_ist() -> None:
    both = pd.concat([minutes([("2025-08-14 09:15", 1.0, 1, 1)], "X"), DAY.assign(
        expired_instrument_key="Y")])  # fmt: skip
    bars = resample(both, "15minute")
    assert set(bars["expired_instrument_key"]) == {"X", "Y"}
    assert str(bars["timestamp"].dt.tz) == "Asia/Kolkata"
    assert len(resample(DAY, "1minute")) == len(DAY)
    with pytest.raises(ValueError, match="not one of"):
        resample(DAY, "7minute")
