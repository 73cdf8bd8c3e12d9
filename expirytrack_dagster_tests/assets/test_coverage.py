"""The coverage_report asset: its wiring, its refresh, and a report over sandbox-collected data."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from dagster import (
    AssetMaterialization,
    AssetSpec,
    DefaultSensorStatus,
    Definitions,
    evaluate_automation_conditions,
    instance_for_test,
    materialize,
)

from expirytrack_dagster.assets.coverage import coverage_report
from expirytrack_dagster.calendar import trading_days_between
from expirytrack_dagster.definitions import defs
from expirytrack_dagster.partitions import expiry_partitions
from expirytrack_dagster.sandbox import FaultConfig
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster_tests.assets.conftest import RELIANCE_KEY
from expirytrack_dagster_tests.checks.conftest import (
    EXPIRY,
    reliance_pipeline,
    run_everything,
)
from expirytrack_dagster_tests.pipeline import column_types

# -- Wiring --------------------------------------------------------------------------------


def test_report_is_registered_outside_the_partitioned_job_with_a_running_sensor() -> None:
    assert "coverage_report" not in defs.resolve_job_def("collect_expiry").graph.node_dict
    sensor = defs.resolve_sensor_def("coverage_report_automation")
    assert sensor.default_status == DefaultSensorStatus.RUNNING
    graph = defs.resolve_asset_graph()
    assert coverage_report.key in graph.get_all_asset_keys()


def test_report_refreshes_when_any_partition_updates_even_with_others_missing() -> None:
    # Only the report and what it watches: candles as a spec, so no resources are needed.
    assets = Definitions(
        assets=[AssetSpec("candles", partitions_def=expiry_partitions), coverage_report],
        resources={"collection": CollectionSettings()},
    )
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(
            expiry_partitions.name, ["RELIANCE_2025-07-31", "RELIANCE_2025-08-28"]
        )
        first = evaluate_automation_conditions(assets, instance)
        assert first.total_requested == 0  # Dagster starts a new condition quietly
        instance.report_runless_asset_event(
            AssetMaterialization("candles", partition="RELIANCE_2025-08-28")
        )
        updated = evaluate_automation_conditions(assets, instance, cursor=first.cursor)
        # RELIANCE_2025-07-31 was never collected: plain eager() would wait for it forever.
        assert updated.total_requested == 1
        instance.report_runless_asset_event(AssetMaterialization("coverage_report"))
        quiet = evaluate_automation_conditions(assets, instance, cursor=updated.cursor)
        assert quiet.total_requested == 0


# -- Against the sandbox -------------------------------------------------------------------


def test_report_summarises_every_partition_from_duckdb_and_the_instance(tmp_path: Path) -> None:
    july = date(2025, 7, 31)
    with reliance_pipeline(tmp_path, contract_types=["FUT"]) as p:
        clean = p.partition("RELIANCE", EXPIRY)
        assert run_everything(p, clean).success
        broken = p.partition("RELIANCE", july)
        listed = p.sandbox.market.contracts(RELIANCE_KEY, july)
        future = next(c["instrument_key"] for c in listed if c["instrument_type"] == "FUT")
        p.sandbox.set_faults(FaultConfig(fail_keys=frozenset({future})))
        assert not run_everything(p, broken, max_attempts=2).success  # blocked: no report
        later = p.partition("RELIANCE", date(2025, 9, 30))  # registered, not collected
        typo = p.partition("RELIANCE", date(2025, 8, 27))  # not an expiry: checks never run
        assert not run_everything(p, typo).success
        # A key typed into the UI's "Add a partition": reported once, skipped, never fatal.
        p.instance.add_dynamic_partitions(expiry_partitions.name, ["nifty-test"])

        result = materialize([coverage_report], instance=p.instance, resources=p.resources())
        assert result.success
        warnings = [
            entry.message
            for entry in p.instance.all_logs(result.run_id)
            if "nifty-test" in (entry.message or "")
        ]
        rows = p.query(
            "SELECT partition_key, contracts, candles, contract_days, days_failed, "
            "failed_contracts, completeness_pct, check_status, failed_checks, verdict "
            "FROM coverage_report ORDER BY expiry"
        )
        (stored,) = p.query("SELECT count(*) FROM candles WHERE partition_key = ?", [clean])[0]
        types = column_types(p.database, "coverage_report")

    days_july = len(trading_days_between(date(2025, 6, 30), july))
    days_august = len(trading_days_between(date(2025, 7, 28), EXPIRY))
    failed = "fetch_outcomes, future_boundary_days"
    assert rows == [
        (broken, 1, 0, days_july, days_july, 1, 0.0, "failed", failed, "failed"),
        (typo, 0, 0, 0, 0, 0, None, "not_run", None, "not_collected"),
        (clean, 1, stored, days_august, 0, 0, 100.0, "passed", None, "complete"),
        (later, 0, 0, 0, 0, 0, None, "not_checked", None, "not_collected"),
    ]
    assert types["expiry"] == "DATE" and types["completeness_pct"] == "DOUBLE"
    assert types["reported_at"] == "TIMESTAMP WITH TIME ZONE"

    assert len(warnings) == 1 and "not of the form SYMBOL_YYYY-MM-DD" in warnings[0]
    metadata = result.asset_materializations_for_node("coverage_report")[0].metadata
    assert metadata["skipped_partition_keys"].value == "nifty-test"
    grid = metadata["coverage_grid"].value.splitlines()
    assert grid[0] == "| expiry | RELIANCE |"
    assert grid[2:6] == [
        "| 2025-09-30 Tue | not collected |",
        "| 2025-08-28 Thu | **100 %** |",
        "| 2025-08-27 Wed | not collected |",
        "| 2025-07-31 Thu | **FAILED** |",
    ]
    assert len(metadata["coverage_table"].value.records) == 4
    assert metadata["partitions"].value == 4
    assert metadata["partitions_failed"].value == 1
    assert metadata["partitions_not_collected"].value == 2
    assert metadata["dagster/row_count"].value == 4
    assert not (tmp_path / "reports").exists()  # no picture file: the UI shows the grid
