"""The ``export_data`` job on a real Dagster instance: run config in, files and manifest metadata out."""

from __future__ import annotations

import json
from pathlib import Path

from dagster import instance_for_test

from expirytrack_dagster.definitions import build_definitions
from expirytrack_dagster.exports.job import export_data
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster_tests.exports.conftest import expected_rows


def _run(database: Path, tmp_path: Path, config: dict):
    collection = CollectionSettings(database=str(database), landing_dir=str(tmp_path / "landing"))
    with instance_for_test() as instance:
        result = export_data.execute_in_process(
            run_config={"ops": {"export_candles": {"config": config}}},
            resources={"collection": collection},
            instance=instance,
            raise_on_error=False,
        )
        logs = [
            e.message
            for e in instance.all_logs(result.run_id)
            if e.dagster_event is None and e.message
        ]
    return result, logs


def test_run_config_exports_and_the_manifest_is_metadata(
    export_database: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    config = {
        "format": "parquet",
        "underlyings": ["NIFTY"],
        "expiries": ["2025-08-28"],
        "types": ["FUT"],
        "interval": "60minute",
        "out": str(out),
    }
    result, logs = _run(export_database, tmp_path, config)
    assert result.success
    assert result.output_for_node("export_candles") == str(out / "_manifest.json")
    (materialized,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = materialized.event_specific_data.metadata
    manifest = json.loads((out / "_manifest.json").read_text())
    want = expected_rows(export_database, "60minute", "k.instrument_type = 'FUT'")
    assert metadata["rows"].value == manifest["rows"] == len(want) == 2  # one bar a session
    assert metadata["manifest"].value["files"] == manifest["files"]
    assert metadata["synthetic"].value is True
    assert any("exporting" in line and "rows as parquet" in line for line in logs)


def test_a_selection_that_matches_nothing_fails_the_run_with_the_reason(
    export_database: Path, tmp_path: Path
) -> None:
    config = {"format": "csv", "underlyings": ["FINNIFTY"], "out": str(tmp_path / "out")}
    result, _ = _run(export_database, tmp_path, config)
    assert not result.success
    failure = result.failure_data_for_node("export_candles")
    assert "no collected partition of FINNIFTY" in failure.error.cause.message
    assert not (tmp_path / "out").exists()


def test_the_project_definitions_offer_the_job_with_its_resource() -> None:
    defs = build_definitions({})
    assert defs.get_job_def("export_data").name == "export_data"
