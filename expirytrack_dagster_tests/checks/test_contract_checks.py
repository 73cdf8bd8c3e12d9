"""The contract checks: a clean chain passes, a duplicated listing stops candles before any request."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetSelection, materialize

from expirytrack_dagster.assets import candles, contracts, expiries
from expirytrack_dagster.checks import contract_quality_checks
from expirytrack_dagster.storage.database import connect
from expirytrack_dagster_tests.assets.conftest import RELIANCE_KEY
from expirytrack_dagster_tests.checks.conftest import (
    EVERYTHING,
    EXPIRY,
    evaluations,
    failed_checks,
    figures,
    reliance_pipeline,
    started_steps,
)

CONTRACTS_ONLY = [expiries, contracts, contract_quality_checks]


def test_clean_contract_list_passes(tmp_path: Path) -> None:
    with reliance_pipeline(tmp_path) as p:
        key = p.partition("RELIANCE", EXPIRY)
        result = p.materialize(key, selection=CONTRACTS_ONLY)
        served = p.sandbox.market.contracts(RELIANCE_KEY, EXPIRY)
    assert result.success and failed_checks(result) == set()
    checks = evaluations(result)
    assert figures(checks["contract_uniqueness"])["contracts"] == len(served)
    consistency = figures(checks["contract_consistency"])
    strikes = {c["strike_price"] for c in served if c["instrument_type"] in ("CE", "PE")}
    assert consistency["strikes"] == len(strikes)
    assert consistency["missing_future"] == 0


def test_weekly_expiry_without_a_future_is_consistent(tmp_path: Path) -> None:
    with reliance_pipeline(tmp_path) as p:
        weekly = min(d for d in p.sandbox.market.expiries("NSE_INDEX|Nifty 50") if d.month == 8)
        key = p.partition("NIFTY", weekly)
        result = p.materialize(key, selection=CONTRACTS_ONLY)
        monthly = p.query("SELECT is_monthly FROM expiries WHERE partition_key = ?", [key])
    # The scope's monthly flag comes from the stored expiry: a weekly owes no future.
    assert monthly == [(False,)]
    consistency = figures(evaluations(result)["contract_consistency"])
    assert consistency["missing_future"] == consistency["weekly_flag_mismatch"] == 0
    assert failed_checks(result) == set()


def test_duplicated_contract_fails_uniqueness_and_blocks_candles(tmp_path: Path) -> None:
    with reliance_pipeline(tmp_path, contract_types=["FUT"]) as p:
        key = p.partition("RELIANCE", EXPIRY)
        assert p.materialize(key, selection=[expiries, contracts]).success
        with connect(p.database) as db:
            db.execute(
                "INSERT INTO contracts SELECT * FROM contracts WHERE partition_key = ?", [key]
            )

        # Re-check the stored list and collect candles in one run, as a retry would.
        result = materialize(
            EVERYTHING,
            selection=AssetSelection.checks(contract_quality_checks)
            | AssetSelection.assets(candles),
            partition_key=key,
            instance=p.instance,
            resources=p.resources(),
            raise_on_error=False,
        )
        requests = p.candle_requests()

    assert failed_checks(result) == {"contract_uniqueness"}
    uniqueness = figures(evaluations(result)["contract_uniqueness"])
    assert (uniqueness["contracts"], uniqueness["duplicate_rows"]) == (2, 1)
    assert uniqueness["duplicated_keys"] == 1
    assert uniqueness["sample_rows"].count("\n") == 3  # header, rule, both copies
    assert "candles" not in started_steps(result)
    assert requests == 0  # no API budget spent on a broken contract list
