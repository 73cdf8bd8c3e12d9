"""Rule → check translation without a run: specs, severities, metadata, summaries."""

from __future__ import annotations

from datetime import date

import pandas as pd
from dagster import AssetCheckSeverity, AssetKey, MetadataValue

from expirytrack_dagster.checks import CANDLE_RULES, CONTRACT_RULES, RULE_SEVERITY
from expirytrack_dagster.checks.results import (
    check_metadata,
    check_result,
    rule_check_specs,
    summary,
)
from expirytrack_dagster.partitions import expiry_partitions
from expirytrack_dagster.quality import PartitionScope, RuleResult, run_quality_rules
from expirytrack_dagster_tests.quality.frames import candles, contract, contracts, fetch_status

KEY = "NIFTY_2025-08-28"


def test_every_rule_has_one_check_with_the_severity_the_rule_reports() -> None:
    assert len(CANDLE_RULES) + len(CONTRACT_RULES) == len(RULE_SEVERITY)
    assert set(CANDLE_RULES) | set(CONTRACT_RULES) == set(RULE_SEVERITY)
    scope = PartitionScope(date(2025, 8, 28), True, date(2025, 8, 25), date(2025, 8, 28))
    listed = contracts([contract(1, "FUT")])
    results = run_quality_rules(candles([]), listed, fetch_status([]), scope)
    assert {r.name: r.severity for r in results} == RULE_SEVERITY


def test_specs_are_partitioned_and_error_rules_block() -> None:
    specs = rule_check_specs(AssetKey("candles"), CANDLE_RULES)
    assert [spec.name for spec in specs] == list(CANDLE_RULES)
    for spec in specs:
        assert spec.partitions_def == expiry_partitions
        assert spec.blocking == (RULE_SEVERITY[spec.name] == "ERROR")
        assert spec.description and not spec.description.startswith(spec.name)
    assert specs[0].description.startswith("ERROR when any candle breaks OHLC integrity")


def _failing() -> RuleResult:
    return RuleResult(
        name="ohlc_integrity",
        passed=False,
        severity="ERROR",
        description="prices consistent",
        counts={"rows": 1000, "violating_rows": 2, "high_below_low": 0},
        metrics={"violating_pct": 0.2, "unknown_pct": float("nan")},
        worst=pd.DataFrame({"expired_instrument_key": ["NSE_FO|1|28-08-2025"], "rows": [2]}),
        samples=pd.DataFrame({"open": [1.0, 2.0]}),
    )


def test_metadata_has_counts_percentages_tables_and_a_summary() -> None:
    metadata = check_metadata(KEY, _failing())
    assert metadata["rows"] == MetadataValue.int(1000)
    assert metadata["high_below_low"] == MetadataValue.int(0)
    assert metadata["violating_pct"] == MetadataValue.float(0.2)
    assert "unknown_pct" not in metadata  # NaN says nothing, and the UI cannot plot it
    assert metadata["worst_contracts"].value.startswith("| expired_instrument_key | rows |")
    assert "NSE_FO\\|1\\|28-08-2025" in metadata["worst_contracts"].value
    assert metadata["sample_rows"].value.count("\n") == 3
    passed = RuleResult("candle_uniqueness", True, "ERROR", "one candle", counts={"rows": 5})
    assert set(check_metadata(KEY, passed)) == {"summary", "rows"}


def test_summary_names_the_rule_verdict_partition_and_what_moved() -> None:
    assert summary(KEY, _failing()) == (
        "ohlc_integrity FAILED (ERROR) on NIFTY_2025-08-28: "
        "rows=1,000, violating_rows=2, violating_pct=0.2, unknown_pct=nan"
    )


def test_result_keeps_the_rules_verdict_and_severity() -> None:
    warn = RuleResult("session_times", False, "WARN", "in session", counts={"rows": 3})
    result = check_result(AssetKey("candles"), KEY, warn)
    assert (result.check_name, result.passed) == ("session_times", False)
    assert result.severity == AssetCheckSeverity.WARN
    assert result.asset_key == AssetKey("candles")
