"""A small coverage report shared by the table, grid and metadata tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from expirytrack_dagster.coverage_report import build_report

NOW = datetime(2025, 10, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def report() -> pd.DataFrame:
    """Three RELIANCE expiries and one NIFTY weekly: complete, partial, failed, not collected."""
    keys = ["RELIANCE_2025-07-31", "RELIANCE_2025-08-28", "RELIANCE_2025-09-30", "NIFTY_2025-08-07"]
    expiries_rows = pd.DataFrame(
        {
            "partition_key": keys[:2] + keys[3:],
            "is_monthly": [True, True, False],
            "data_source": "sandbox",
        }
    )
    fetch = pd.DataFrame(
        {
            "partition_key": ["RELIANCE_2025-07-31", "RELIANCE_2025-08-28", "NIFTY_2025-08-07"],
            "contract_days": [200, 200, 100],
            "days_complete": [150, 120, 99],
            "days_no_trades": [50, 70, 1],
            "days_failed": [0, 10, 0],
            "failed_contracts": [0, 1, 0],
            "collected_at": pd.Timestamp(NOW),
        }
    )
    statuses = {
        "RELIANCE_2025-07-31": {"ohlc_integrity": "passed"},
        "RELIANCE_2025-08-28": {"ohlc_integrity": "passed"},
        "NIFTY_2025-08-07": {"fetch_outcomes": "failed"},
    }
    return build_report(keys, [expiries_rows, fetch], statuses, NOW)
