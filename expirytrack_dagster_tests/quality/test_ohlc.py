"""OHLC integrity rule on hand-made candles."""

from __future__ import annotations

import math

from expirytrack_dagster.quality import QualitySettings, check_ohlc
from expirytrack_dagster_tests.quality.frames import candles, key

FUT = key(64103)
OPT = key(71706)


def test_valid_candles_pass_including_flat_candle_and_zero_volume() -> None:
    frame = candles(
        [
            (FUT, "2025-08-01 09:15", 100.0, 101.0, 99.0, 100.5, 10, 500),
            (FUT, "2025-08-01 09:16", 100.0, 100.0, 100.0, 100.0, 0, 500),  # flat, no volume
            (OPT, "2025-08-01 09:15", 0.05, 0.05, 0.05, 0.05, 0, 0),  # minimum tick, zero OI
        ]
    )
    result = check_ohlc(frame)
    assert result.passed
    assert result.counts == {
        "rows": 3,
        "violating_rows": 0,
        "high_below_open_or_close": 0,
        "low_above_open_or_close": 0,
        "high_below_low": 0,
        "price_not_positive": 0,
        "negative_volume": 0,
        "negative_open_interest": 0,
    }
    assert result.metrics == {"violating_pct": 0.0}
    assert result.worst is None
    assert result.samples is None
    assert result.worst_markdown() == ""


def test_each_violation_kind_is_counted() -> None:
    frame = candles(
        [
            (FUT, "2025-08-01 09:15", 100.0, 101.0, 99.0, 100.5, 10, 500),  # valid
            (FUT, "2025-08-01 09:16", 100.0, 100.5, 99.0, 101.0, 10, 500),  # high < close
            (FUT, "2025-08-01 09:17", 100.0, 101.0, 100.2, 100.5, 10, 500),  # low > open
            (FUT, "2025-08-01 09:18", 100.0, 99.0, 101.0, 100.0, 10, 500),  # high < low (+2)
            (OPT, "2025-08-01 09:15", 0.0, 0.0, 0.0, 0.0, 10, 500),  # zero prices
            (OPT, "2025-08-01 09:16", 5.0, 5.0, 5.0, math.nan, 10, 500),  # missing close
            (OPT, "2025-08-01 09:17", 5.0, 5.0, 5.0, 5.0, -1, 500),  # negative volume
            (OPT, "2025-08-01 09:18", 5.0, 5.0, 5.0, 5.0, 1, -3),  # negative OI
        ]
    )
    result = check_ohlc(frame)
    assert not result.passed
    assert result.counts == {
        "rows": 8,
        "violating_rows": 7,
        "high_below_open_or_close": 2,
        "low_above_open_or_close": 2,
        "high_below_low": 1,
        "price_not_positive": 2,
        "negative_volume": 1,
        "negative_open_interest": 1,
    }
    assert result.metrics["violating_pct"] == 7 / 8 * 100
    assert result.worst is not None
    assert result.worst.to_dict("records") == [
        {"expired_instrument_key": OPT, "violating_rows": 4},
        {"expired_instrument_key": FUT, "violating_rows": 3},
    ]


def test_samples_name_the_violations_and_respect_the_sample_size() -> None:
    frame = candles(
        [(FUT, f"2025-08-01 09:{15 + i}", 100.0, 99.0, 101.0, 100.0, 10, 500) for i in range(4)]
    )
    result = check_ohlc(frame, QualitySettings(sample_rows=2))
    assert result.samples is not None
    assert len(result.samples) == 2
    assert (
        list(result.samples["violations"])
        == ["high_below_open_or_close, low_above_open_or_close, high_below_low"] * 2
    )
    assert "partition_key" not in result.samples.columns
    assert "NSE_FO\\|64103\\|28-08-2025" in result.samples_markdown()


def test_empty_frame_passes() -> None:
    result = check_ohlc(candles([]))
    assert result.passed
    assert result.counts["rows"] == 0
    assert result.metrics["violating_pct"] == 0.0
