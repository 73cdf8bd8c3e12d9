"""Asset checks: thin Dagster wrappers running the ``quality`` rules on one partition at a time."""

from expirytrack_dagster.checks.candle_checks import candle_quality_checks
from expirytrack_dagster.checks.contract_checks import contract_quality_checks
from expirytrack_dagster.checks.research_checks import RESEARCH_CHECKS
from expirytrack_dagster.quality import RULE_SEVERITY

ALL_CHECKS = [contract_quality_checks, candle_quality_checks]
"""Every quality-rule check (on the collection assets); with :data:`RESEARCH_CHECKS` (on the
research assets) every asset check, for ``Definitions(asset_checks=...)``."""

__all__ = [
    "ALL_CHECKS",
    "RESEARCH_CHECKS",
    "RULE_SEVERITY",
    "candle_quality_checks",
    "contract_quality_checks",
]
