"""Uniqueness: one candle per (contract, start time), and one listing per contract."""

from __future__ import annotations

import numpy as np
import pandas as pd

from expirytrack_dagster.calendar import wall_clock_ns
from expirytrack_dagster.quality._frames import (
    CANDLE_COLUMNS,
    KEY,
    contract_codes,
    count_by_contract,
)
from expirytrack_dagster.quality.result import Verdict, percent, top_rows
from expirytrack_dagster.quality.settings import QualitySettings


def check_candle_uniqueness(
    candles: pd.DataFrame, settings: QualitySettings | None = None
) -> Verdict:
    """ERROR when a (expired_instrument_key, timestamp) pair appears on more than one row.

    ``duplicate_rows`` counts the surplus rows (what a de-duplication would drop);
    ``duplicated_candles`` counts the distinct pairs affected.
    """
    settings = settings or QualitySettings()
    order, surplus, involved = _repeated_pairs(
        contract_codes(candles[KEY])[0], wall_clock_ns(candles["timestamp"])
    )
    duplicate_rows = int(surplus.sum())
    counts = {
        "rows": len(candles),
        "duplicate_rows": duplicate_rows,
        "duplicated_candles": int(involved.sum()) - duplicate_rows,
    }
    worst = samples = None
    if duplicate_rows:
        # Sorted order puts each repeated pair's rows side by side.
        shown = order[involved[order]][: settings.sample_rows]
        samples = top_rows(candles.iloc[shown][CANDLE_COLUMNS], settings.sample_rows)
        worst = top_rows(
            count_by_contract(candles[KEY].iloc[np.flatnonzero(surplus)], "duplicate_rows"),
            settings.worst_contracts,
        )
    return Verdict(
        passed=duplicate_rows == 0,
        description="one candle per (expired_instrument_key, timestamp)",
        counts=counts,
        metrics={"duplicate_pct": percent(duplicate_rows, len(candles))},
        worst=worst,
        samples=samples,
    )


def check_contract_uniqueness(
    contracts: pd.DataFrame, settings: QualitySettings | None = None
) -> Verdict:
    """ERROR when an expired_instrument_key is listed more than once for the partition."""
    settings = settings or QualitySettings()
    involved = contracts[KEY].duplicated(keep=False).to_numpy()
    duplicate_rows = int(contracts[KEY].duplicated(keep="first").sum())
    samples = None
    if duplicate_rows:
        samples = top_rows(
            contracts.loc[involved].sort_values(KEY, kind="stable"), settings.sample_rows
        )
    return Verdict(
        passed=duplicate_rows == 0,
        description="one contract row per expired_instrument_key",
        counts={
            "contracts": len(contracts),
            "duplicate_rows": duplicate_rows,
            "duplicated_keys": int(contracts.loc[involved, KEY].nunique()),
        },
        metrics={"duplicate_pct": percent(duplicate_rows, len(contracts))},
        worst=None,
        samples=samples,
    )


def _repeated_pairs(
    codes: np.ndarray, wall_ns: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows sorted by (contract, time); masks of rows repeating an earlier pair and of every
    row in a repeat.

    Sorting two int64 arrays and comparing neighbours is several times faster on millions of
    rows than hashing the pairs with ``DataFrame.duplicated``.
    """
    order = np.lexsort((wall_ns, codes))
    same = (codes[order][1:] == codes[order][:-1]) & (wall_ns[order][1:] == wall_ns[order][:-1])
    surplus = np.zeros(len(codes), dtype=bool)
    surplus[order[1:][same]] = True
    involved = surplus.copy()
    involved[order[:-1][same]] = True
    return order, surplus, involved
