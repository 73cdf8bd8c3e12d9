"""What a quality rule finds (a verdict, then its named result), and the markdown tables it renders."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import pandas as pd

Severity = Literal["ERROR", "WARN"]


@dataclass(frozen=True, eq=False)  # eq=False: comparing DataFrames field-wise is ambiguous
class Verdict:
    """What a rule function finds on one partition: pass or fail, and the figures behind it.

    ``counts`` hold whole numbers (rows, contracts, days); ``metrics`` hold ratios and
    percentages. ``worst`` lists the worst contracts, ``samples`` a few offending rows; both are
    None when there is nothing to show. The rule's name and severity are not here: the registry
    (registry.py) declares them and adds them when it runs the rule.
    """

    passed: bool
    description: str
    counts: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    worst: pd.DataFrame | None = None
    samples: pd.DataFrame | None = None

    def worst_markdown(self) -> str:
        """The worst contracts as a markdown table ("" when there are none)."""
        return markdown_table(self.worst)

    def samples_markdown(self) -> str:
        """The sample offending rows as a markdown table ("" when there are none)."""
        return markdown_table(self.samples)


@dataclass(frozen=True, eq=False, kw_only=True)
class RuleResult(Verdict):
    """A verdict under its rule's name and severity: what an asset check reports."""

    name: str
    severity: Severity

    def markdown(self) -> str:
        """A short report: verdict, counts, metrics, then the worst contracts and samples."""
        verdict = "passed" if self.passed else f"FAILED ({self.severity})"
        parts = [f"**{self.name}** {verdict}: {self.description}"]
        figures = [(k, _cell(v)) for k, v in {**self.counts, **self.metrics}.items()]
        if figures:
            parts.append(markdown_table(pd.DataFrame(figures, columns=["measure", "value"])))
        if worst := self.worst_markdown():
            parts.append("Worst contracts:\n\n" + worst)
        if samples := self.samples_markdown():
            parts.append("Samples:\n\n" + samples)
        return "\n\n".join(parts)


def markdown_table(frame: pd.DataFrame | None, max_rows: int | None = None) -> str:
    """``frame`` as a GitHub-flavoured markdown table, without the index.

    Written here rather than using ``DataFrame.to_markdown`` because that needs ``tabulate``,
    which the project does not depend on. Pipes are escaped: instrument keys contain them.
    """
    if frame is None or frame.empty:
        return ""
    rows = frame if max_rows is None else frame.head(max_rows)
    header = "| " + " | ".join(_cell(c) for c in rows.columns) + " |"
    rule = "|" + "|".join("---" for _ in rows.columns) + "|"
    body = [
        "| " + " | ".join(_cell(v) for v in record) + " |"
        for record in rows.itertuples(index=False, name=None)
    ]
    return "\n".join([header, rule, *body])


def _cell(value: Any) -> str:
    if value is None or value is pd.NaT:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.4f}".rstrip("0").rstrip(".")
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return ""
    return str(value).replace("|", "\\|").replace("\n", " ")


def top_rows(frame: pd.DataFrame, limit: int) -> pd.DataFrame | None:
    """The first ``limit`` rows with a fresh index, or None when there are none to show."""
    if frame.empty or limit <= 0:
        return None
    return frame.head(limit).reset_index(drop=True)


def percent(part: int | float, whole: int | float) -> float:
    """``part`` as a percentage of ``whole``, 0.0 when ``whole`` is zero (nothing to judge)."""
    return 100.0 * part / whole if whole else 0.0
