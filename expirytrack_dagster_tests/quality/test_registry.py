"""The rule registry: every rule run in report order, each on the partition data it names."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from expirytrack_dagster.quality import (
    RULE_SEVERITY,
    RULES,
    PartitionData,
    PartitionScope,
    Rule,
    Verdict,
    rules_judging,
    run_quality_rules,
)
from expirytrack_dagster_tests.quality.frames import candles, contract, contracts, fetch_status
from expirytrack_dagster_tests.quality.synthetic import synthetic_partition

SCOPE = PartitionScope(date(2025, 8, 28), True, date(2025, 8, 25), date(2025, 8, 28))


def test_every_rule_passes_on_a_clean_partition_and_renders() -> None:
    candles, contracts, fetch, scope = synthetic_partition(sessions=3, strikes=8)
    results = run_quality_rules(candles, contracts, fetch, scope)
    assert [(r.name, r.severity) for r in results] == [(r.name, r.severity) for r in RULES]
    assert all(r.passed for r in results), [r.markdown() for r in results if not r.passed]
    by_name = {r.name: r for r in results}
    assert by_name["ohlc_integrity"].counts["rows"] == 17 * 3 * 375
    near, far = by_name["near_money_coverage"], by_name["far_strike_coverage"]
    assert near.counts["near_money_days"] + far.counts["far_days"] == 3 * 8 * 2
    for result in results:
        assert result.markdown().startswith(f"**{result.name}** passed")


def test_weekly_partition_passes_without_a_future() -> None:
    candles, contracts, fetch, scope = synthetic_partition(with_future=False, sessions=2, strikes=4)
    results = {r.name: r for r in run_quality_rules(candles, contracts, fetch, scope)}
    assert all(r.passed for r in results.values())
    assert results["future_coverage"].counts["futures"] == 0
    assert results["contract_consistency"].counts["missing_future"] == 0


def test_listed_future_with_nothing_fetched_fails_the_data_loss_rules() -> None:
    listed = contracts([contract(1, "FUT")])
    results = {r.name: r for r in run_quality_rules(candles([]), listed, fetch_status([]), SCOPE)}
    failed = {name for name, r in results.items() if not r.passed}
    assert failed == {"fetch_outcomes", "future_boundary_days"}
    assert {RULE_SEVERITY[name] for name in failed} == {"ERROR"}
    assert results["fetch_outcomes"].counts["missing_outcomes"] == 3
    assert results["future_boundary_days"].counts["futures_without_trades"] == 1


def test_window_without_trading_days_yields_empty_reports() -> None:
    weekend = PartitionScope(date(2025, 8, 28), True, date(2025, 8, 16), date(2025, 8, 17))
    listed = contracts([contract(1, "FUT")])
    results = {r.name: r for r in run_quality_rules(candles([]), listed, fetch_status([]), weekend)}
    assert all(r.passed for r in results.values())
    assert results["fetch_outcomes"].counts["contract_days"] == 0


def test_each_rule_is_registered_once_on_an_asset_that_has_checks() -> None:
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names)) == 11
    assert {rule.asset for rule in RULES} == {"contracts", "candles"}  # a typo would go unchecked
    assert [rule.name for rule in rules_judging("contracts")] == [
        "contract_uniqueness",
        "contract_consistency",
    ]


def test_contract_rules_run_on_the_contract_list_alone() -> None:
    # They run before candles are fetched, so they must read neither candles nor the day grid.
    duplicated = contracts([contract(1, "FUT"), contract(1, "FUT")])
    data = PartitionData(SCOPE, duplicated)
    results = {rule.name: rule.run(data) for rule in rules_judging("contracts")}
    assert not results["contract_uniqueness"].passed
    assert results["contract_uniqueness"].counts["duplicate_rows"] == 1
    assert results["contract_consistency"].passed
    assert "days" not in vars(data)  # the day grid was never built
    with pytest.raises(ValueError, match="candles"):
        rules_judging("candles")[0].run(data)


def test_the_day_grid_is_built_once_and_shared() -> None:
    listed = contracts([contract(1, "FUT")])
    data = PartitionData(SCOPE, listed, candles([]), fetch_status([]))
    assert data.days is data.days
    assert len(data.days) == 3  # one future × Mon, Tue, Thu (27 Aug 2025 was a holiday)


def test_a_rule_reading_what_no_partition_offers_is_refused() -> None:
    def check_prices(prices: pd.DataFrame) -> Verdict:
        """WARN never: this rule cannot be declared."""
        return Verdict(passed=True, description="")

    with pytest.raises(TypeError, match=r"check_prices takes \['prices'\]"):
        Rule("prices", "WARN", "candles", check_prices)


def test_description_is_the_docstrings_first_paragraph() -> None:
    (ohlc,) = (rule for rule in RULES if rule.name == "ohlc_integrity")
    assert ohlc.description == (
        "ERROR when any candle breaks OHLC integrity; counts rows per violation kind."
    )
    assert all(rule.description and "\n" not in rule.description for rule in RULES)
