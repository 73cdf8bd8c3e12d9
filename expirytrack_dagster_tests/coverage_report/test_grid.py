"""The coverage grid: plain-text markdown, newest expiry first, a bounded number of rows."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from expirytrack_dagster.coverage_report import GRID_ROWS, build_report, coverage_grid_markdown
from expirytrack_dagster_tests.coverage_report.conftest import NOW


def test_grid_is_plain_text_newest_expiry_first_with_a_legend(report: pd.DataFrame) -> None:
    grid = coverage_grid_markdown(report)
    lines = grid.splitlines()
    assert lines[0] == "| expiry | NIFTY | RELIANCE |"
    assert lines[2:6] == [
        "| 2025-09-30 Tue |  | not collected |",
        "| 2025-08-28 Thu |  | **95.0 % partial** |",  # bold: a monthly expiry
        "| 2025-08-07 Thu | FAILED |  |",
        "| 2025-07-31 Thu |  | **100 %** |",
    ]
    assert "99 % or more is complete" in grid and "*not collected*" in grid
    assert "Synthetic data from the built-in sandbox" in grid
    assert grid.isascii()  # readable in any font: no emoji squares


def test_grid_shows_only_the_newest_expiries() -> None:
    symbols = ["NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "NIFTYNXT50", "SENSEX", "BANKEX"]
    newest = date(2026, 11, 24)
    keys = [f"{symbols[i % 7]}_{newest - timedelta(days=2 * i)}" for i in range(200)]
    grid = coverage_grid_markdown(build_report(keys, [], {}, NOW)).splitlines()
    assert grid[2].startswith("| 2026-11-24 Tue | ")
    dates = [line.split(" | ")[0].removeprefix("| ") for line in grid[2 : 2 + GRID_ROWS]]
    assert dates == sorted(dates, reverse=True) and len(set(dates)) == GRID_ROWS
    assert f"{200 - GRID_ROWS} older expiry dates are in the coverage_table" in grid[-1]
    assert "Synthetic data" not in grid[-1]  # no partition says it came from the sandbox


def test_empty_report_says_so() -> None:
    assert coverage_grid_markdown(build_report([], [], {}, NOW)) == "No partitions yet."
