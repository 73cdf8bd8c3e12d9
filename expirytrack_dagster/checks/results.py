"""How quality rules become Dagster asset checks: one spec per registered rule, one result each.

The specs come from the rule registry (``quality/registry.py``) at definition time, because
Dagster needs each check's name, severity and blocking flag before any rule has run; the
results come from running the same registry entries, so the two cannot disagree.
"""

import math
import warnings
from collections.abc import Sequence
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    PreviewWarning,
)

from expirytrack_dagster.partitions import expiry_partitions
from expirytrack_dagster.quality import Rule, RuleResult, rules_judging

_SEVERITY = {"ERROR": AssetCheckSeverity.ERROR, "WARN": AssetCheckSeverity.WARN}


def asset_rules(asset: AssetKey) -> tuple[Rule, ...]:
    """The registered rules judging ``asset``, in report order."""
    return rules_judging(asset.to_user_string())


def rule_check_specs(asset: AssetKey, reads: Sequence[AssetKey] = ()) -> list[AssetCheckSpec]:
    """One partition-aware check spec per rule on ``asset``; ERROR rules block.

    Partition-aware checks are a preview API in Dagster 1.13, used deliberately (a verdict per
    partition is the point), so its warning is silenced here rather than printed on every load.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=PreviewWarning, message=".*AssetCheckSpec")
        return [
            AssetCheckSpec(
                rule.name,
                asset=asset,
                description=rule.description,
                blocking=rule.blocking,
                partitions_def=expiry_partitions,
                metadata={"severity": rule.severity},
                additional_deps=reads,
            )
            for rule in asset_rules(asset)
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
