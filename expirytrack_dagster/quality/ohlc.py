"""OHLC integrity: every candle's prices are positive and consistent, volume and OI non-negative."""

from __future__ import annotations

import numpy as np
import pandas as pd

from expirytrack_dagster.quality._frames import KEY, count_by_contract, violation_samples
from expirytrack_dagster.quality.result import Verdict, percent, top_rows
from expirytrack_dagster.quality.settings import QualitySettings

OHLC_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")


def ohlc_violations(candles: pd.DataFrame) -> dict[str, np.ndarray]:
    """One boolean mask per violation kind, aligned with ``candles``' rows.

    A flat candle (open = high = low = close) and zero volume are valid: an illiquid contract
    prints exactly that. A missing (NaN) price counts as not positive: a candle needs all four.
    """
    o, h, lo, c = (candles[col].to_numpy(dtype=np.float64) for col in OHLC_COLUMNS)
    return {
        "high_below_open_or_close": h < np.maximum(o, c),
        "low_above_open_or_close": lo > np.minimum(o, c),
        "high_below_low": h < lo,
        "price_not_positive": ~((o > 0) & (h > 0) & (lo > 0) & (c > 0)),
        "negative_volume": candles["volume"].to_numpy() < 0,
        "negative_open_interest": candles["open_interest"].to_numpy() < 0,
    }


def check_ohlc(candles: pd.DataFrame, settings: QualitySettings | None = None) -> Verdict:
    """ERROR when any candle breaks OHLC integrity; counts rows per violation kind.

    A row breaking several conditions counts once in ``violating_rows`` and once per kind.
    """
    settings = settings or QualitySettings()
    masks = ohlc_violations(candles)
    bad = np.logical_or.reduce(list(masks.values())) if len(candles) else np.zeros(0, bool)
    violating = int(bad.sum())
    counts = {"rows": len(candles), "violating_rows": violating}
    counts |= {kind: int(mask.sum()) for kind, mask in masks.items()}
    worst = None
    if violating:
        worst = top_rows(
            count_by_contract(candles[KEY][bad], "violating_rows"), settings.worst_contracts
        )
    return Verdict(
        passed=violating == 0,
        description="high >= max(open, close), low <= min(open, close), high >= low, "
        "prices > 0, volume >= 0, open interest >= 0",
        counts=counts,
        metrics={"violating_pct": percent(violating, len(candles))},
        worst=worst,
        samples=violation_samples(candles, masks, settings.sample_rows) if violating else None,
    )
