"""All rules together: a scaled-down synthetic partition, and partitions with nothing fetched."""

from __future__ import annotations

from datetime import date

from expirytrack_dagster.quality import PartitionScope, run_quality_rules
from expirytrack_dagster_tests.quality.frames import candles, contract, contracts, fetch_status
from expirytrack_dagster_tests.quality.synthetic import synthetic_partition


def test_every_rule_passes_on_a_clean_partition_and_renders() -> None:
    candles, contracts, fetch, scope = synthetic_partition(sessions=3, strikes=8)
    results = run_quality_rules(candles, contracts, fetch, scope)
    assert [r.name for r in results] == [
        "ohlc_integrity",
        "candle_uniqueness",
        "contract_uniqueness",
        "session_times",
        "fetch_outcomes",
        "future_coverage",
        "future_boundary_days",
        "near_money_coverage",
        "far_strike_coverage",
        "silent_option_days",
        "contract_consistency",
    ]
    assert all(r.passed for r in results), [r.markdown() for r in results if not r.passed]
    assert results[0].counts["rows"] == 17 * 3 * 375
    option_days = results[7].counts["near_money_days"] + results[8].counts["far_days"]
    assert option_days == 3 * 8 * 2
    for result in results:
        assert result.markdown().startswith(f"**{result.name}** passed")


def test_weekly_partition_passes_without_a_future() -> None:
    candles, contracts, fetch, scope = synthetic_partition(with_future=False, sessions=2, strikes=4)
    results = {r.name: r for r in run_quality_rules(candles, contracts, fetch, scope)}
    assert all(r.passed for r in results.values())
    assert results["future_coverage"].counts["futures"] == 0
    assert results["contract_consistency"].counts["missing_future"] == 0


def test_listed_future_with_nothing_fetched_fails_the_data_loss_rules() -> None:
    scope = PartitionScope(date(2025, 8, 28), True, date(2025, 8, 25), date(2025, 8, 28))
    listed = contracts([contract(1, "FUT")])
    results = {r.name: r for r in run_quality_rules(candles([]), listed, fetch_status([]), scope)}
    failed = {name for name, r in results.items() if not r.passed}
    assert failed == {"fetch_outcomes", "future_boundary_days"}
    assert results["fetch_outcomes"].counts["missing_outcomes"] == 3
    assert results["future_boundary_days"].counts["futures_without_trades"] == 1


def test_window_without_trading_days_yields_empty_reports() -> None:
    weekend = PartitionScope(date(2025, 8, 28), True, date(2025, 8, 16), date(2025, 8, 17))
    listed = contracts([contract(1, "FUT")])
    results = run_quality_rules(candles([]), listed, fetch_status([]), weekend)
    assert all(r.passed for r in results)
    assert results[4].counts["contract_days"] == 0
