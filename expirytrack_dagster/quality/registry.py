"""Every quality rule, declared once: its name, severity, the asset it judges and its function.

The asset checks (``expirytrack_dagster.checks``) build one Dagster check per rule from
:data:`RULES`, and :func:`run_quality_rules` runs them all in that order, the report order.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import pandas as pd

from expirytrack_dagster.quality.consistency import check_contract_consistency
from expirytrack_dagster.quality.coverage import (
    check_far_strike_coverage,
    check_future_boundary_days,
    check_future_coverage,
    check_near_money_coverage,
)
from expirytrack_dagster.quality.fetch_outcomes import check_fetch_outcomes
from expirytrack_dagster.quality.ohlc import check_ohlc
from expirytrack_dagster.quality.partition import READABLE, PartitionData
from expirytrack_dagster.quality.result import RuleResult, Severity, Verdict
from expirytrack_dagster.quality.session import check_sessions
from expirytrack_dagster.quality.settings import PartitionScope, QualitySettings
from expirytrack_dagster.quality.silent_days import check_silent_option_days
from expirytrack_dagster.quality.uniqueness import (
    check_candle_uniqueness,
    check_contract_uniqueness,
)

Asset = Literal["contracts", "candles"]
"""The assets a rule can judge."""


@dataclass(frozen=True)
class Rule:
    """One quality rule.

    ``severity``: an ERROR rule blocks the assets downstream of the one it judges (its failure
    means lost or corrupt data); a WARN rule reports. ``asset``: the asset whose check runs the
    rule; ``contracts`` rules read the contract list alone, so they run before any candle is
    fetched. ``check``: the rule function; its parameters name what it reads (attributes of
    :class:`PartitionData`) and its docstring's first paragraph describes the check in the UI.
    """

    name: str
    severity: Severity
    asset: Asset
    check: Callable[..., Verdict]

    def __post_init__(self) -> None:
        if unknown := [name for name in self.reads if name not in READABLE]:
            raise TypeError(
                f"rule {self.name}: {self.check.__name__} takes {unknown}, "
                f"but a partition offers only {sorted(READABLE)}"
            )

    @property
    def reads(self) -> tuple[str, ...]:
        """What the rule function reads: its parameter names."""
        return tuple(inspect.signature(self.check).parameters)

    @property
    def description(self) -> str:
        """The rule function's docstring, first paragraph, on one line."""
        doc = self.check.__doc__ or self.name
        return " ".join(doc.strip().split("\n\n")[0].split())

    @property
    def blocking(self) -> bool:
        """Whether a failure stops the assets downstream (ERROR rules do)."""
        return self.severity == "ERROR"

    def run(self, data: PartitionData) -> RuleResult:
        """The rule's verdict on ``data``, under the rule's name and severity."""
        inputs = {name: getattr(data, name) for name in self.reads}
        if missing := [name for name, value in inputs.items() if value is None]:
            raise ValueError(f"rule {self.name} reads {missing}, which the partition lacks")
        verdict = self.check(**inputs)
        return RuleResult(name=self.name, severity=self.severity, **vars(verdict))


RULES: tuple[Rule, ...] = (
    Rule("ohlc_integrity", "ERROR", "candles", check_ohlc),
    Rule("candle_uniqueness", "ERROR", "candles", check_candle_uniqueness),
    Rule("contract_uniqueness", "ERROR", "contracts", check_contract_uniqueness),
    Rule("session_times", "WARN", "candles", check_sessions),
    Rule("fetch_outcomes", "ERROR", "candles", check_fetch_outcomes),
    Rule("future_coverage", "ERROR", "candles", check_future_coverage),
    Rule("future_boundary_days", "ERROR", "candles", check_future_boundary_days),
    Rule("near_money_coverage", "WARN", "candles", check_near_money_coverage),
    Rule("far_strike_coverage", "WARN", "candles", check_far_strike_coverage),
    Rule("silent_option_days", "ERROR", "candles", check_silent_option_days),
    Rule("contract_consistency", "WARN", "contracts", check_contract_consistency),
)
"""Every rule, in report order."""

RULE_SEVERITY: Mapping[str, Severity] = MappingProxyType({r.name: r.severity for r in RULES})
"""Each rule's severity by name, in report order."""


def rules_judging(asset: str) -> tuple[Rule, ...]:
    """The rules on ``asset`` (``"contracts"`` or ``"candles"``), in report order."""
    return tuple(rule for rule in RULES if rule.asset == asset)


def run_quality_rules(
    candles: pd.DataFrame,
    contracts: pd.DataFrame,
    fetch_status: pd.DataFrame,
    scope: PartitionScope,
    settings: QualitySettings | None = None,
) -> list[RuleResult]:
    """Every rule on one partition, in report order; the day grid is built once and shared."""
    data = PartitionData(scope, contracts, candles, fetch_status, settings or QualitySettings())
    return [rule.run(data) for rule in RULES]
