"""Data-quality rules for one (underlying, expiry) partition, as pure functions over DataFrames.

No Dagster here: the asset checks wrap these. Each rule function returns a :class:`Verdict`;
registry.py declares every rule once (name, severity, asset judged, function) and runs it into a
:class:`RuleResult`.
"""

from expirytrack_dagster.quality.consistency import check_contract_consistency
from expirytrack_dagster.quality.contract_days import day_status, near_money_mask
from expirytrack_dagster.quality.coverage import (
    check_far_strike_coverage,
    check_future_boundary_days,
    check_future_coverage,
    check_near_money_coverage,
    coverage_histogram,
)
from expirytrack_dagster.quality.fetch_outcomes import check_fetch_outcomes
from expirytrack_dagster.quality.ohlc import check_ohlc
from expirytrack_dagster.quality.partition import PartitionData
from expirytrack_dagster.quality.registry import (
    RULE_SEVERITY,
    RULES,
    Rule,
    rules_judging,
    run_quality_rules,
)
from expirytrack_dagster.quality.result import RuleResult, Severity, Verdict, markdown_table
from expirytrack_dagster.quality.session import check_sessions, expected_candles
from expirytrack_dagster.quality.settings import PartitionScope, QualitySettings
from expirytrack_dagster.quality.silent_days import check_silent_option_days
from expirytrack_dagster.quality.uniqueness import (
    check_candle_uniqueness,
    check_contract_uniqueness,
)

__all__ = [
    "RULES",
    "RULE_SEVERITY",
    "PartitionData",
    "PartitionScope",
    "QualitySettings",
    "Rule",
    "RuleResult",
    "Severity",
    "Verdict",
    "check_candle_uniqueness",
    "check_contract_consistency",
    "check_contract_uniqueness",
    "check_far_strike_coverage",
    "check_fetch_outcomes",
    "check_future_boundary_days",
    "check_future_coverage",
    "check_near_money_coverage",
    "check_ohlc",
    "check_sessions",
    "check_silent_option_days",
    "coverage_histogram",
    "day_status",
    "expected_candles",
    "markdown_table",
    "near_money_mask",
    "rules_judging",
    "run_quality_rules",
]
