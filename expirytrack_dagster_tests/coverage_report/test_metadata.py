"""The coverage_report page: a sortable table newest expiry first, and counts by verdict."""

from __future__ import annotations

import pandas as pd

from expirytrack_dagster.coverage_report import VERDICTS, coverage_metadata


def test_metadata_has_the_grid_a_table_newest_first_and_counts(report: pd.DataFrame) -> None:
    metadata = coverage_metadata(report, ["nifty-test"])
    records = metadata["coverage_table"].value.records
    assert [r.data["partition_key"] for r in records] == [
        "RELIANCE_2025-09-30",
        "RELIANCE_2025-08-28",
        "NIFTY_2025-08-07",
        "RELIANCE_2025-07-31",
    ]
    failed = records[2].data
    assert (failed["status"], failed["failed_checks"]) == ("failed", "fetch_outcomes")
    assert records[0].data["status"] == "not collected"
    assert records[0].data["completeness_pct"] is None
    assert metadata["coverage_grid"].value.startswith("| expiry | NIFTY | RELIANCE |")
    assert {kind: metadata[f"partitions_{kind}"] for kind in VERDICTS} == {
        "complete": 1,
        "partial": 1,
        "incomplete": 0,
        "failed": 1,
        "not_collected": 1,
    }
    assert metadata["partitions"] == 4
    assert metadata["skipped_partition_keys"].value == "nifty-test"
    assert coverage_metadata(report, [])["skipped_partition_keys"].value == "none"
