"""Contract consistency: the partition's contract list hangs together as one expiry's chain."""

from __future__ import annotations

import numpy as np
import pandas as pd

from expirytrack_dagster.quality._frames import KEY
from expirytrack_dagster.quality.result import Verdict, percent, top_rows
from expirytrack_dagster.quality.settings import PartitionScope, QualitySettings

SAMPLE_COLUMNS: list[str] = [
    KEY,
    "instrument_type",
    "strike_price",
    "expiry",
    "lot_size",
    "tick_size",
    "weekly",
    "problem",
]


def check_contract_consistency(
    contracts: pd.DataFrame, scope: PartitionScope, settings: QualitySettings | None = None
) -> Verdict:
    """WARN when the contract list does not look like one complete expiry.

    Counts: ``strikes_missing_ce`` / ``strikes_missing_pe`` (a strike listed on one side only);
    ``missing_future`` (1 when a monthly expiry has no future; weekly expiries have none by
    design); ``wrong_expiry`` (a contract whose expiry is not the partition's);
    ``lot_size_mismatch`` (contracts off the expiry's most common lot size: futures and options
    share it); ``tick_size_mismatch`` (contracts off the most common tick of their kind, options
    and futures compared separately since they differ, 5 vs 10 paise); ``weekly_flag_mismatch``
    (an option whose ``weekly`` flag contradicts the partition being monthly). WARN: the list is
    what Upstox returned, so these point at the source (or at our partitioning), not lost data.
    """
    settings = settings or QualitySettings()
    contracts = contracts.reset_index(drop=True)
    kinds = contracts["instrument_type"].astype(object)
    options = contracts[kinds.isin(("CE", "PE"))]
    problems: list[pd.DataFrame] = []

    sides = (
        pd.crosstab(options["strike_price"], options["instrument_type"])
        .reindex(columns=["CE", "PE"], fill_value=0)
        .gt(0)
    )
    for side in ("CE", "PE"):
        lacking = sides.index[~sides[side]]
        rows = options[options["strike_price"].isin(lacking)]
        problems.append(rows.assign(problem=f"strike has no {side}"))
    missing_future = int(scope.monthly and not (kinds == "FUT").any())
    if missing_future:
        problems.append(pd.DataFrame({"problem": ["monthly expiry has no future"]}))

    wrong_expiry = (pd.to_datetime(contracts["expiry"]).dt.date != scope.expiry).to_numpy()
    problems.append(contracts[wrong_expiry].assign(problem="expiry is not the partition's"))

    lot_off = _off_mode(contracts["lot_size"]).to_numpy()
    problems.append(contracts[lot_off].assign(problem="lot size differs from the expiry's"))
    tick_off = np.zeros(len(contracts), dtype=bool)
    for _, ticks in contracts["tick_size"].groupby(np.where(kinds == "FUT", "future", "option")):
        tick_off[ticks.index.to_numpy()] = _off_mode(ticks).to_numpy()
    problems.append(contracts[tick_off].assign(problem="tick size differs from its kind's"))

    weekly = options["weekly"]
    flag_off = (weekly.notna() & (weekly.astype(object) == scope.monthly)).to_numpy()
    problems.append(options[flag_off].assign(problem="weekly flag contradicts expiry"))

    counts = {
        "contracts": len(contracts),
        "strikes": len(sides),
        "strikes_missing_ce": int((~sides["CE"]).sum()),
        "strikes_missing_pe": int((~sides["PE"]).sum()),
        "missing_future": missing_future,
        "wrong_expiry": int(wrong_expiry.sum()),
        "lot_size_mismatch": int(lot_off.sum()),
        "tick_size_mismatch": int(tick_off.sum()),
        "weekly_flag_mismatch": int(flag_off.sum()),
    }
    found = [p for p in problems if not p.empty]
    flagged = pd.concat(found, ignore_index=True) if found else pd.DataFrame()
    passed = sum(v for k, v in counts.items() if k not in ("contracts", "strikes")) == 0
    return Verdict(
        passed=passed,
        description="strikes paired CE/PE, monthly expiry has its future, one expiry, "
        "consistent lot and tick sizes",
        counts=counts,
        metrics={
            "strikes_unpaired_pct": percent(
                counts["strikes_missing_ce"] + counts["strikes_missing_pe"], len(sides)
            )
        },
        worst=None,
        samples=top_rows(flagged.reindex(columns=SAMPLE_COLUMNS), settings.sample_rows),
    )


def _off_mode(values: pd.Series) -> pd.Series:
    """True where a value differs from the most common one (ties: the smallest wins)."""
    if values.dropna().empty:
        return pd.Series(False, index=values.index)
    return values != values.mode().iloc[0]
