"""The coverage grid: expiry × underlying in markdown, newest expiry first, one cell a partition.

Plain text, no emoji or colour: each cell says its completeness and verdict in words, so it
reads the same in any font. The Dagster UI renders it as a table on the asset's page.
"""

from typing import Any

import pandas as pd

from expirytrack_dagster.coverage_report.table import GREEN_AT, YELLOW_AT

GRID_ROWS = 60
"""Expiry dates shown in the grid, newest first; the table has every partition."""

GRID_LEGEND = (
    f"Each cell: % of contract-days answered. {GREEN_AT:g} % or more is complete; "
    f"*partial* from {YELLOW_AT:g} %; *low* below {YELLOW_AT:g} %; *FAILED*: a blocking check "
    "failed; *not collected*: registered, not collected yet; empty: no such expiry. "
    "**Bold**: monthly expiry."
)

SYNTHETIC_NOTE = "Synthetic data from the built-in sandbox, not market data."
"""Said under the grid when any partition came from the sandbox."""


def newest_first(report: pd.DataFrame, rows: int = GRID_ROWS) -> tuple[pd.DataFrame, int]:
    """The partitions of the newest ``rows`` expiry dates, newest first; and how many dates
    were left out."""
    dates = sorted(set(report["expiry"]), reverse=True)
    shown = set(dates[:rows])
    recent = report[report["expiry"].isin(shown)]
    return recent.sort_values(["expiry", "underlying_symbol"], ascending=[False, True]), max(
        0, len(dates) - rows
    )


def cell_text(r: Any) -> str:
    """A partition's grid cell in plain text: completeness and, unless complete, the verdict.

    ``100 %`` · ``95.0 % partial`` · ``40.2 % low`` · ``FAILED`` (a blocking check failed) ·
    ``not collected``. ``r`` is a row of the report (from ``itertuples``).
    """
    if r.verdict == "not_collected":
        return "not collected"
    if r.verdict == "failed":
        return "FAILED"
    pct = float(r.completeness_pct)
    figure = "100 %" if pct >= 99.95 else f"{pct:.1f} %"
    return {"partial": f"{figure} partial", "incomplete": f"{figure} low"}.get(r.verdict, figure)


def coverage_grid_markdown(report: pd.DataFrame) -> str:
    """Expiry × underlying as a markdown table, newest expiry first, then the legend.

    ``report`` is the ``coverage_report`` table (``table.build_report``). Only the newest
    ``GRID_ROWS`` expiry dates are shown; a note says how many older ones were left out.
    """
    if report.empty:
        return "No partitions yet."
    recent, older = newest_first(report)
    symbols = sorted(set(report["underlying_symbol"]))
    lines = [
        "| expiry | " + " | ".join(symbols) + " |",
        "|---|" + "|".join(":-:" for _ in symbols) + "|",
    ]
    for expiry, rows in recent.groupby("expiry", sort=False):
        cells = {}
        for r in rows.itertuples(index=False):
            text = cell_text(r)
            monthly = r.is_monthly is not pd.NA and bool(r.is_monthly)
            cells[r.underlying_symbol] = f"**{text}**" if monthly else text
        row = [cells.get(symbol, "") for symbol in symbols]
        lines.append(f"| {expiry:%Y-%m-%d %a} | " + " | ".join(row) + " |")
    notes = [GRID_LEGEND]
    if older:
        notes.append(f"{older} older expiry dates are in the coverage_table metadata.")
    synthetic = (report["data_source"] == "sandbox").any()
    return (
        "\n".join(lines)
        + "\n\n"
        + " ".join(notes)
        + (f"\n\n_{SYNTHETIC_NOTE}_" if synthetic else "")
    )
