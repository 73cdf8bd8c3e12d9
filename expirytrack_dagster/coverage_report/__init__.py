"""The parts of the ``coverage_report`` asset: check status, the table, the grid, the UI page.

``check_status`` reads each partition's latest check results from the Dagster instance;
``table`` aggregates the stored tables in DuckDB into one row and verdict per partition;
``grid`` draws the expiry × underlying grid in markdown; ``metadata`` assembles what the asset's
page in the UI shows. The asset itself and its refresh sensor are in ``assets/coverage.py``.
"""

from expirytrack_dagster.coverage_report.check_status import (
    CHECK_KEYS,
    latest_check_statuses,
    partition_check_status,
)
from expirytrack_dagster.coverage_report.grid import GRID_ROWS, coverage_grid_markdown
from expirytrack_dagster.coverage_report.metadata import coverage_metadata, coverage_table
from expirytrack_dagster.coverage_report.table import (
    GREEN_AT,
    REPORT_COLUMNS,
    VERDICTS,
    YELLOW_AT,
    build_report,
    stored_partitions,
    verdict,
)

__all__ = [
    "CHECK_KEYS",
    "GREEN_AT",
    "GRID_ROWS",
    "REPORT_COLUMNS",
    "VERDICTS",
    "YELLOW_AT",
    "build_report",
    "coverage_grid_markdown",
    "coverage_metadata",
    "coverage_table",
    "latest_check_statuses",
    "partition_check_status",
    "stored_partitions",
    "verdict",
]
