"""The fetch-outcomes rule on the hand-made NIFTY chain: lost, missing and mismatched days."""

from __future__ import annotations

import pandas as pd
import pytest

from expirytrack_dagster.quality import (
    check_fetch_outcomes,
    check_near_money_coverage,
    day_status,
)
from expirytrack_dagster_tests.quality.chain import (
    CE,
    MON,
    MONTHLY,
    PE,
    SCOPE,
    SETTINGS,
    TUE,
    days_of,
    partition,
    row,
)


def test_clean_partition_loses_nothing() -> None:
    days = days_of()
    fetch = check_fetch_outcomes(days, SETTINGS)
    assert fetch.passed
    assert fetch.counts == {
        "contracts": 11,
        "contract_days": 33,
        "missing_outcomes": 0,
        "failed": 0,
        "unconfirmed": 0,
        "count_mismatches": 0,
        "contracts_affected": 0,
    }


def test_failed_contract_is_an_error_with_its_message() -> None:
    slot = (CE[24900], TUE)
    days = days_of(minutes={slot: []}, outcomes={slot: ("failed", 0, "UDAPI100500: server error")})
    assert row(days, *slot)["status"] == "failed"
    assert row(days, *slot)["label"] == "failed"
    result = check_fetch_outcomes(days, SETTINGS)
    assert not result.passed
    assert result.counts["failed"] == 1
    assert result.counts["missing_outcomes"] == 0
    assert result.counts["contracts_affected"] == 1
    assert result.worst is not None
    assert result.worst.iloc[0]["expired_instrument_key"] == CE[24900]
    assert result.worst.iloc[0]["first_error"] == "UDAPI100500: server error"
    assert result.worst.iloc[0]["lost_days"] == 1
    assert "UDAPI100500" in result.worst_markdown()
    # A failed day is the fetch rule's error, not a near-money shortfall on top.
    assert check_near_money_coverage(days, SETTINGS).counts["near_money_days"] == 17


def test_missing_outcome_and_stored_count_mismatch_are_errors() -> None:
    days = days_of(
        minutes={(CE[24800], TUE): range(300)},
        outcomes={(PE[24800], MON): None, (CE[24800], TUE): ("complete", 375, None)},
    )
    assert row(days, PE[24800], MON)["status"] == "missing"
    assert row(days, PE[24800], MON)["label"] == "missing"
    result = check_fetch_outcomes(days, SETTINGS)
    assert not result.passed
    assert result.counts["missing_outcomes"] == 1
    assert result.counts["count_mismatches"] == 1
    assert result.counts["failed"] == 0
    assert result.counts["contracts_affected"] == 2
    assert result.metrics["lost_contract_days_pct"] == pytest.approx(2 / 33 * 100)


def test_best_outcome_wins_when_a_retry_succeeded() -> None:
    candles, fetched = partition()
    retry = fetched.iloc[[0]].assign(status="failed", candle_count=0, error="timeout")
    fetched = pd.concat([retry, fetched], ignore_index=True)
    days = day_status(candles, MONTHLY, fetched, SCOPE, SETTINGS)
    assert check_fetch_outcomes(days, SETTINGS).passed
