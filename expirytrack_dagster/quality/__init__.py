"""Data-quality rules for one (underlying, expiry) partition, as pure functions over DataFrames.

No Dagster here: the asset checks wrap these. Each rule returns a :class:`RuleResult`.
"""

from expirytrack_dagster.quality.completeness import (
    check_far_strike_coverage,
    check_fetch_outcomes,
    check_future_boundary_days,
    check_future_coverage,
    check_near_money_coverage,
    day_status,
)
from expirytrack_dagster.quality.consistency import check_contract_consistency
from expirytrack_dagster.quality.ohlc import check_ohlc
from expirytrack_dagster.quality.result import RuleResult, markdown_table
from expirytrack_dagster.quality.session import check_sessions, expected_candles
from expirytrack_dagster.quality.settings import PartitionScope, QualitySettings
from expirytrack_dagster.quality.silent_days import check_silent_option_days
from expirytrack_dagster.quality.suite import run_quality_rules
from expirytrack_dagster.quality.uniqueness import (
    check_candle_uniqueness,
    check_contract_uniqueness,
)

__all__ = [
    "PartitionScope",
    "QualitySettings",
    "RuleResult",
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
    "day_status",
    "expected_candles",
    "markdown_table",
    "run_quality_rules",
]
