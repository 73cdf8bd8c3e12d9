"""coverage_report: every partition's collection and check status, its grid, picture and refresh."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from dagster import (
    AssetMaterialization,
    AssetSpec,
    DefaultSensorStatus,
    Definitions,
    evaluate_automation_conditions,
    instance_for_test,
    materialize,
)

from expirytrack_dagster.assets.coverage import (
    COLOURS,
    GRID_ROWS,
    build_report,
    coverage_grid_markdown,
    coverage_report,
    coverage_svg,
    partition_check_status,
    report_path,
    verdict,
)
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

NOW = datetime(2025, 10, 1, 12, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"

# -- Pure parts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("contract_days", "pct", "checks", "expected"),
    [
        (0, None, "not_checked", "not_collected"),
        (100, 100.0, "passed", "complete"),
        (100, 99.0, "warn", "complete"),  # a warning does not redden coverage
        (100, 98.99, "passed", "partial"),
        (100, 90.0, "passed", "partial"),
        (100, 89.99, "passed", "incomplete"),
        (100, 100.0, "failed", "failed"),  # a blocking check failed
    ],
)
def test_verdict_thresholds(contract_days: int, pct: float | None, checks: str, expected: str):
    assert verdict(contract_days, pct, checks) == expected


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


def _report() -> pd.DataFrame:
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


def test_build_report_covers_registered_and_stored_partitions() -> None:
    report = _report().set_index("partition_key")
    assert list(report.index) == [
        "NIFTY_2025-08-07",
        "RELIANCE_2025-07-31",
        "RELIANCE_2025-08-28",
        "RELIANCE_2025-09-30",
    ]
    assert report.loc["RELIANCE_2025-08-28", "completeness_pct"] == 95.0
    assert report["verdict"].to_dict() == {
        "NIFTY_2025-08-07": "failed",
        "RELIANCE_2025-07-31": "complete",
        "RELIANCE_2025-08-28": "partial",
        "RELIANCE_2025-09-30": "not_collected",
    }
    never = report.loc["RELIANCE_2025-09-30"]
    assert (never["contracts"], never["candles"], never["contract_days"]) == (0, 0, 0)
    assert pd.isna(never["completeness_pct"]) and pd.isna(never["is_monthly"])
    assert never["check_status"] == "not_checked"


def test_grid_is_plain_text_newest_expiry_first_with_a_legend() -> None:
    grid = coverage_grid_markdown(_report())
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


def test_grid_and_picture_show_only_the_newest_expiries_at_a_readable_size() -> None:
    symbols = ["NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "NIFTYNXT50", "SENSEX", "BANKEX"]
    newest = date(2026, 11, 24)
    keys = [f"{symbols[i % 7]}_{newest - timedelta(days=2 * i)}" for i in range(200)]
    report = build_report(keys, [], {}, NOW)
    grid = coverage_grid_markdown(report).splitlines()
    assert grid[2].startswith("| 2026-11-24 Tue | ")
    dates = [line.split(" | ")[0].removeprefix("| ") for line in grid[2 : 2 + GRID_ROWS]]
    assert dates == sorted(dates, reverse=True) and len(set(dates)) == GRID_ROWS
    assert f"{200 - GRID_ROWS} older expiry dates are in the coverage_table" in grid[-1]
    svg = ET.fromstring(coverage_svg(report, NOW))
    width, height = int(svg.get("width")), int(svg.get("height"))
    assert width <= 1000 and height <= 2000
    cells = [g for g in svg.iter(f"{SVG}g") if g.find(f"{SVG}title") is not None]
    assert len(cells) == GRID_ROWS
    first_row = min(float(g.find(f"{SVG}rect").get("y")) for g in cells)
    top = [g for g in cells if float(g.find(f"{SVG}rect").get("y")) == first_row]
    assert [g.find(f"{SVG}title").text.split(":")[0] for g in top] == ["NIFTY_2026-11-24"]


def test_a_foreign_partition_key_is_left_out_not_fatal() -> None:
    report = build_report(["nifty-test", "RELIANCE_2025-07-31", "NIFTY_2025-13-01"], [], {}, NOW)
    assert list(report["partition_key"]) == ["RELIANCE_2025-07-31"]


def test_svg_has_a_cell_per_partition_labels_and_a_legend() -> None:
    svg = ET.fromstring(coverage_svg(_report(), NOW))
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert "ExpiryTrack coverage, newest expiry first" in texts
    assert {"NIFTY", "RELIANCE", "2025-09-30 Tue", "2025-07-31 Thu"} <= set(texts)
    assert texts.index("2025-09-30 Tue") < texts.index("2025-07-31 Thu")
    assert "Synthetic data from the built-in sandbox, not market data." in texts
    assert {"100", "95.0", "! check"} <= set(texts)  # completeness in each cell
    assert any("not collected yet" in (t or "") for t in texts)
    cells = [g for g in svg.iter(f"{SVG}g") if g.find(f"{SVG}title") is not None]
    assert len(cells) == 4
    fills = sorted(g.find(f"{SVG}rect").get("fill") for g in cells)
    expected = ("complete", "partial", "failed", "not_collected")
    assert fills == sorted(COLOURS[kind] for kind in expected)
    tips = [g.find(f"{SVG}title").text for g in cells]
    assert any("NIFTY_2025-08-07: failed" in tip and "fetch_outcomes" in tip for tip in tips)


def test_empty_report_still_draws() -> None:
    empty = build_report([], [], {}, NOW)
    assert coverage_grid_markdown(empty) == "No partitions yet."
    assert ET.fromstring(coverage_svg(empty, NOW)) is not None


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
    svg = Path(metadata["coverage_svg"].value)
    assert svg == report_path(str(tmp_path / "expirytrack.duckdb")).resolve()
    assert ET.parse(svg).getroot().tag == f"{SVG}svg"
