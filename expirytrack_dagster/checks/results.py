"""How quality rules become Dagster asset checks: one spec per rule, one result with its metadata.

Severity and blocking are decided per rule here, at definition time, because Dagster needs them
before any rule has run; each result still carries the severity its rule reported, and a test
keeps the two in agreement.
"""

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    PreviewWarning,
)

from expirytrack_dagster import quality
from expirytrack_dagster.partitions import expiry_partitions
from expirytrack_dagster.quality import RuleResult
from expirytrack_dagster.quality.result import Severity

RULE_SEVERITY: dict[str, Severity] = {
    "ohlc_integrity": "ERROR",
    "candle_uniqueness": "ERROR",
    "contract_uniqueness": "ERROR",
    "session_times": "WARN",
    "fetch_outcomes": "ERROR",
    "future_coverage": "ERROR",
    "future_boundary_days": "ERROR",
    "near_money_coverage": "WARN",
    "far_strike_coverage": "WARN",
    "silent_option_days": "ERROR",
    "contract_consistency": "WARN",
}
"""Each rule's severity. ERROR rules block downstream assets: they mean lost or corrupt data."""

_RULE_FUNCTIONS: dict[str, Callable[..., RuleResult]] = {
    "ohlc_integrity": quality.check_ohlc,
    "candle_uniqueness": quality.check_candle_uniqueness,
    "contract_uniqueness": quality.check_contract_uniqueness,
    "session_times": quality.check_sessions,
    "fetch_outcomes": quality.check_fetch_outcomes,
    "future_coverage": quality.check_future_coverage,
    "future_boundary_days": quality.check_future_boundary_days,
    "near_money_coverage": quality.check_near_money_coverage,
    "far_strike_coverage": quality.check_far_strike_coverage,
    "silent_option_days": quality.check_silent_option_days,
    "contract_consistency": quality.check_contract_consistency,
}

_SEVERITY = {"ERROR": AssetCheckSeverity.ERROR, "WARN": AssetCheckSeverity.WARN}


def rule_description(rule: str) -> str:
    """The rule's own docstring, first paragraph: what the UI shows under the check's name."""
    doc = _RULE_FUNCTIONS[rule].__doc__ or rule
    return " ".join(doc.strip().split("\n\n")[0].split())


def rule_check_specs(asset: AssetKey, rules: Sequence[str]) -> list[AssetCheckSpec]:
    """One partition-aware check spec per rule on ``asset``; ERROR rules block.

    Partition-aware checks are a preview API in Dagster 1.13, used deliberately (a verdict per
    partition is the point), so its warning is silenced here rather than printed on every load.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=PreviewWarning, message=".*AssetCheckSpec")
        return [
            AssetCheckSpec(
                rule,
                asset=asset,
                description=rule_description(rule),
                blocking=RULE_SEVERITY[rule] == "ERROR",
                partitions_def=expiry_partitions,
                metadata={"severity": RULE_SEVERITY[rule]},
            )
            for rule in rules
        ]


def check_result(asset: AssetKey, partition_key: str, result: RuleResult) -> AssetCheckResult:
    """A rule's verdict as an asset check result, with metadata a person can act on."""
    return AssetCheckResult(
        asset_key=asset,
        check_name=result.name,
        passed=result.passed,
        severity=_SEVERITY[result.severity],
        description=result.description,
        metadata=check_metadata(partition_key, result),
    )


def check_metadata(partition_key: str, result: RuleResult) -> dict[str, Any]:
    """Summary line, every count and percentage, then the worst contracts and sample rows.

    Counts and percentages are separate numeric entries so the UI plots them across a
    partition's check history; the two tables are markdown and left out when empty.
    """
    metadata: dict[str, Any] = {"summary": MetadataValue.text(summary(partition_key, result))}
    metadata |= {name: MetadataValue.int(int(value)) for name, value in result.counts.items()}
    metadata |= {
        name: MetadataValue.float(round(float(value), 4))
        for name, value in result.metrics.items()
        if math.isfinite(value)
    }
    if worst := result.worst_markdown():
        metadata["worst_contracts"] = MetadataValue.md(worst)
    if samples := result.samples_markdown():
        metadata["sample_rows"] = MetadataValue.md(samples)
    return metadata


def summary(partition_key: str, result: RuleResult) -> str:
    """One line to paste in a message: rule, verdict, partition and the figures that moved.

    Zero counts are left out: on a failure they are the kinds of defect that did not occur.
    """
    verdict = "passed" if result.passed else f"FAILED ({result.severity})"
    figures = [f"{k}={v:,}" for k, v in result.counts.items() if v]
    figures += [f"{k}={_short(v)}" for k, v in result.metrics.items() if v]
    tail = f": {', '.join(figures)}" if figures else ""
    return f"{result.name} {verdict} on {partition_key}{tail}"


def _short(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def results_by_name(
    results: Sequence[RuleResult], rules: Sequence[str]
) -> Mapping[str, RuleResult]:
    """The results of ``rules`` in that order; an absent rule is a programming error."""
    found = {result.name: result for result in results}
    missing = [rule for rule in rules if rule not in found]
    if missing:
        raise KeyError(f"the quality suite returned no result for {missing}")
    return {rule: found[rule] for rule in rules}
