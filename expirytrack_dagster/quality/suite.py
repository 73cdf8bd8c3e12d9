"""Every quality rule over one (underlying, expiry) partition, for callers that want them all."""

from __future__ import annotations

import pandas as pd

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
from expirytrack_dagster.quality.result import RuleResult
from expirytrack_dagster.quality.session import check_sessions
from expirytrack_dagster.quality.settings import PartitionScope, QualitySettings
from expirytrack_dagster.quality.silent_days import check_silent_option_days
from expirytrack_dagster.quality.uniqueness import (
    check_candle_uniqueness,
    check_contract_uniqueness,
)


def run_quality_rules(
    candles: pd.DataFrame,
    contracts: pd.DataFrame,
    fetch_status: pd.DataFrame,
    scope: PartitionScope,
    settings: QualitySettings | None = None,
) -> list[RuleResult]:
    """All rules in report order; the per-(contract, day) frame is built once and shared."""
    settings = settings or QualitySettings()
    days = day_status(candles, contracts, fetch_status, scope, settings)
    return [
        check_ohlc(candles, settings),
        check_candle_uniqueness(candles, settings),
        check_contract_uniqueness(contracts, settings),
        check_sessions(candles, scope.interval, settings),
        check_fetch_outcomes(days, settings),
        check_future_coverage(days, scope, settings),
        check_future_boundary_days(days, scope, settings),
        check_near_money_coverage(days, settings),
        check_far_strike_coverage(days, settings),
        check_silent_option_days(days, settings),
        check_contract_consistency(contracts, scope, settings),
    ]
