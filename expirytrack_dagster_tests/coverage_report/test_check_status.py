"""Check status: the worst of a partition's rule results, read from a real Dagster instance."""

from __future__ import annotations

from dagster import AssetCheckEvaluation, AssetKey, instance_for_test

from expirytrack_dagster.checks import ALL_CHECKS
from expirytrack_dagster.coverage_report import (
    CHECK_KEYS,
    latest_check_statuses,
    partition_check_status,
)


def test_partition_check_status_reports_the_worst() -> None:
    assert partition_check_status({}) == ("not_checked", None)
    assert partition_check_status({"ohlc_integrity": "passed"}) == ("passed", None)
    assert partition_check_status({"ohlc_integrity": "passed", "session_times": "failed"}) == (
        "warn",
        "session_times",
    )
    assert partition_check_status(
        {"session_times": "failed", "fetch_outcomes": "failed", "ohlc_integrity": "running"}
    ) == ("failed", "session_times, fetch_outcomes")
    assert partition_check_status({"ohlc_integrity": "running"}) == ("running", None)
    assert partition_check_status({"ohlc_integrity": "not_run"}) == ("not_run", None)


def test_check_keys_are_the_checks_the_definitions_run() -> None:
    defined = {key for checks in ALL_CHECKS for key in checks.check_keys}
    assert set(CHECK_KEYS) == defined and len(CHECK_KEYS) == len(defined)


def test_latest_statuses_per_partition_leave_out_unplaceable_results() -> None:
    candles = AssetKey("candles")
    with instance_for_test() as instance:
        for partition, rule, passed in [
            ("RELIANCE_2025-08-28", "ohlc_integrity", True),
            ("RELIANCE_2025-08-28", "session_times", False),
            ("NIFTY_2025-08-07", "fetch_outcomes", False),
            (None, "ohlc_integrity", False),  # no partition: cannot be placed
            ("NIFTY_2025-08-07", "not_a_rule", False),  # not one of ours: not asked for
        ]:
            instance.report_runless_asset_event(
                AssetCheckEvaluation(
                    asset_key=candles, check_name=rule, passed=passed, partition=partition
                )
            )
        statuses = latest_check_statuses(instance)
    assert statuses == {
        "RELIANCE_2025-08-28": {"ohlc_integrity": "passed", "session_times": "failed"},
        "NIFTY_2025-08-07": {"fetch_outcomes": "failed"},
    }
