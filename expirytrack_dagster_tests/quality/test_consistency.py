"""Contract consistency rule on hand-made contract lists."""

from __future__ import annotations

from datetime import date

import pandas as pd

from expirytrack_dagster.quality import PartitionScope, check_contract_consistency
from expirytrack_dagster_tests.quality.frames import EXPIRY, contract, contracts, key

MONTHLY = PartitionScope(
    expiry=EXPIRY, monthly=True, window_start=date(2025, 6, 1), window_end=EXPIRY
)
WEEKLY = PartitionScope(
    expiry=EXPIRY, monthly=False, window_start=date(2025, 8, 1), window_end=EXPIRY
)
CHAIN = [
    contract(1, "FUT"),
    contract(10, "CE", 24900),
    contract(11, "PE", 24900),
    contract(12, "CE", 24950),
    contract(13, "PE", 24950),
]
PROBLEMS = (
    "strikes_missing_ce",
    "strikes_missing_pe",
    "missing_future",
    "wrong_expiry",
    "lot_size_mismatch",
    "tick_size_mismatch",
    "weekly_flag_mismatch",
)


def problems(listed: pd.DataFrame, scope: PartitionScope = MONTHLY) -> dict[str, int]:
    result = check_contract_consistency(listed, scope)
    assert result.passed == (sum(result.counts[p] for p in PROBLEMS) == 0)
    return {p: result.counts[p] for p in PROBLEMS if result.counts[p]}


def test_complete_monthly_chain_passes() -> None:
    result = check_contract_consistency(contracts(CHAIN), MONTHLY)
    assert result.passed
    assert result.counts["contracts"] == 5
    assert result.counts["strikes"] == 2
    assert result.samples is None


def test_options_and_future_ticks_differ_without_a_mismatch() -> None:
    # 5 paise options, 10 paise future: compared within their own kind.
    assert problems(contracts(CHAIN)) == {}


def test_strike_missing_its_pe() -> None:
    listed = contracts([*CHAIN, contract(14, "CE", 25000)])
    assert problems(listed) == {"strikes_missing_pe": 1}
    result = check_contract_consistency(listed, MONTHLY)
    assert result.samples is not None
    assert result.samples.iloc[0]["expired_instrument_key"] == key(14)
    assert result.samples.iloc[0]["problem"] == "strike has no PE"
    assert result.metrics["strikes_unpaired_pct"] == 100 / 3


def test_monthly_expiry_without_its_future() -> None:
    assert problems(contracts(CHAIN[1:])) == {"missing_future": 1}


def test_weekly_expiry_without_a_future_is_not_flagged() -> None:
    weekly_chain = contracts(CHAIN[1:]).assign(weekly=True)
    assert problems(weekly_chain, WEEKLY) == {}


def test_contract_of_another_expiry() -> None:
    listed = contracts(
        [*CHAIN, contract(14, "CE", 25000, date(2025, 9, 25)), contract(15, "PE", 25000)]
    )
    assert problems(listed) == {"wrong_expiry": 1}
    result = check_contract_consistency(listed, MONTHLY)
    assert result.samples is not None
    assert result.samples.iloc[0]["problem"] == "expiry is not the partition's"


def test_lot_and_tick_sizes_off_the_expiry() -> None:
    listed = contracts(
        [
            *CHAIN,
            contract(14, "CE", 25000, lot_size=50),
            contract(15, "PE", 25000, tick_size=10.0),
        ]
    )
    assert problems(listed) == {"lot_size_mismatch": 1, "tick_size_mismatch": 1}


def test_weekly_flag_contradicting_the_partition() -> None:
    listed = contracts(
        [*CHAIN[:3], contract(12, "CE", 24950, weekly=True), contract(13, "PE", 24950, weekly=True)]
    )
    assert problems(listed) == {"weekly_flag_mismatch": 2}
