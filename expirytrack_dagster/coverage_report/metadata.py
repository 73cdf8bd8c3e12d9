"""What the ``coverage_report`` asset shows on its page in the Dagster UI: grid, table, counts."""

from collections.abc import Sequence
from typing import Any

import pandas as pd
from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from expirytrack_dagster.coverage_report.grid import coverage_grid_markdown
from expirytrack_dagster.coverage_report.table import VERDICTS

_TABLE_COLUMNS = {
    "status": "string",
    "partition_key": "string",
    "contracts": "int",
    "candles": "int",
    "completeness_pct": "float",
    "failed_contracts": "int",
    "check_status": "string",
    "failed_checks": "string",
}


def coverage_table(report: pd.DataFrame) -> MetadataValue:
    """Every partition as a table the UI can sort, newest expiry first."""
    records = [
        TableRecord(
            {
                "status": r.verdict.replace("_", " "),
                "partition_key": r.partition_key,
                "contracts": int(r.contracts),
                "candles": int(r.candles),
                "completeness_pct": None if pd.isna(r.completeness_pct) else r.completeness_pct,
                "failed_contracts": int(r.failed_contracts),
                "check_status": r.check_status,
                "failed_checks": r.failed_checks or "",
            }
        )
        for r in report.sort_values(
            ["expiry", "underlying_symbol"], ascending=[False, True]
        ).itertuples(index=False)
    ]
    return MetadataValue.table(
        records, TableSchema([TableColumn(name, kind) for name, kind in _TABLE_COLUMNS.items()])
    )


def coverage_metadata(report: pd.DataFrame, skipped_keys: Sequence[str]) -> dict[str, Any]:
    """The asset's output metadata: the grid, the table, partition counts by verdict, the
    total candle count and the partition keys that were skipped as not ours."""
    counts = report["verdict"].value_counts()
    return {
        "coverage_grid": MetadataValue.md(coverage_grid_markdown(report)),
        "coverage_table": coverage_table(report),
        "partitions": len(report),
        **{f"partitions_{kind}": int(counts.get(kind, 0)) for kind in VERDICTS},
        "candles_total": int(report["candles"].sum()),
        "skipped_partition_keys": MetadataValue.text(", ".join(skipped_keys) or "none"),
    }
