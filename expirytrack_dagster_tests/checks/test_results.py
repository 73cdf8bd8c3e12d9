"""Rule → check translation without a run: specs, severities, metadata, summaries."""

from __future__ import annotations

import pandas as pd
from dagster import AssetCheckSeverity, AssetKey, MetadataValue

from expirytrack_dagster.checks import RULE_SEVERITY
from expirytrack_dagster.checks.results import (
    check_metadata,
    check_result,
    rule_check_specs,
    summary,
)
from expirytrack_dagster.partitions import expiry_partitions
from expirytrack_dagster.quality import RULES, RuleResult

KEY = "NIFTY_2025-08-28"


def test_every_registered_rule_has_one_spec_on_its_asset_and_error_rules_block() -> None:
    specs = [
        spec for asset in ("contracts", "candles") for spec in rule_check_specs(AssetKey(asset))
    ]
    assert sorted(spec.name for spec in specs) == sorted(rule.name for rule in RULES)
    specs_by_name = {spec.name: spec for spec in specs}
    for rule in RULES:
        spec = specs_by_name[rule.name]
        assert spec.asset_key == AssetKey(rule.asset)
        assert spec.partitions_def == expiry_partitions
        assert spec.blocking == (rule.severity == "ERROR")
        assert spec.metadata == {"severity": rule.severity}
        assert spec.description == rule.description
    assert specs_by_name["ohlc_integrity"].description.startswith(
        "ERROR when any candle breaks OHLC"
    )
    blocking = {spec.name for spec in specs if spec.blocking}
    assert blocking == {
        "ohlc_integrity",
        "candle_uniqueness",
        "contract_uniqueness",
        "fetch_outcomes",
        "future_coverage",
        "future_boundary_days",
        "silent_option_days",
    }


def test_checks_still_export_each_rules_severity_by_name() -> None:
    # assets/coverage.py reads it to tell a blocking failure from a warning.
    assert list(RULE_SEVERITY) == [rule.name for rule in RULES]
    assert RULE_SEVERITY["session_times"] == "WARN"


def _failing() -> RuleResult:
    return RuleResult(
        name="ohlc_integrity",
        severity="ERROR",
        passed=False,
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
    passed = RuleResult(True, "one candle", {"rows": 5}, name="candle_uniqueness", severity="ERROR")
    assert set(check_metadata(KEY, passed)) == {"summary", "rows"}


def test_summary_names_the_rule_verdict_partition_and_what_moved() -> None:
    assert summary(KEY, _failing()) == (
        "ohlc_integrity FAILED (ERROR) on NIFTY_2025-08-28: "
        "rows=1,000, violating_rows=2, violating_pct=0.2, unknown_pct=nan"
    )


def test_result_keeps_the_rules_verdict_and_severity() -> None:
    warn = RuleResult(False, "in session", {"rows": 3}, name="session_times", severity="WARN")
    result = check_result(AssetKey("candles"), KEY, warn)
    assert (result.check_name, result.passed) == ("session_times", False)
    assert result.severity == AssetCheckSeverity.WARN
    assert result.asset_key == AssetKey("candles")
