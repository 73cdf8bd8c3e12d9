"""The shared rule result and its markdown tables."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd

from expirytrack_dagster.quality import RuleResult, markdown_table
from expirytrack_dagster_tests.quality.frames import ts


def test_markdown_table_escapes_pipes_and_formats_values() -> None:
    frame = pd.DataFrame(
        {
            "expired_instrument_key": ["NSE_FO|64103|28-08-2025", "NSE_FO|1|28-08-2025"],
            "trading_date": [date(2025, 8, 1), None],
            "coverage": [0.98666666, math.nan],
            "strike": [24900.0, 25000.0],
            "timestamp": [ts("2025-08-01 09:15"), pd.NaT],
        }
    )
    assert markdown_table(frame) == (
        "| expired_instrument_key | trading_date | coverage | strike | timestamp |\n"
        "|---|---|---|---|---|\n"
        "| NSE_FO\\|64103\\|28-08-2025 | 2025-08-01 | 0.9867 | 24900 | 2025-08-01 09:15:00+05:30 |\n"
        "| NSE_FO\\|1\\|28-08-2025 |  |  | 25000 |  |"
    )
    assert markdown_table(frame, max_rows=1).count("\n") == 2


def test_markdown_table_of_nothing_is_empty() -> None:
    assert markdown_table(None) == ""
    assert markdown_table(pd.DataFrame({"a": []})) == ""


def test_result_markdown_reports_verdict_figures_and_tables() -> None:
    worst = pd.DataFrame({"expired_instrument_key": ["NSE_FO|1|28-08-2025"], "rows": [3]})
    result = RuleResult(
        name="ohlc_integrity",
        passed=False,
        severity="ERROR",
        description="prices consistent",
        counts={"violating_rows": 3},
        metrics={"violating_pct": 1.5},
        worst=worst,
        samples=None,
    )
    text = result.markdown()
    assert text.startswith("**ohlc_integrity** FAILED (ERROR): prices consistent")
    assert "| violating_rows | 3 |" in text
    assert "| violating_pct | 1.5 |" in text
    assert "Worst contracts:" in text
    assert "Samples:" not in text
    assert result.samples_markdown() == ""
