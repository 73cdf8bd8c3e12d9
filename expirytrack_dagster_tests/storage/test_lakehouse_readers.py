"""Every kind of reader answers the same from the lakehouse as from the DuckDB file.

A machine collects a sandbox partition with the lakehouse on (its own file and the lakehouse both
get the rows). A second machine, whose own file holds only the schema, reads the lakehouse. The
asset checks, the research API (option chain, OI tracker), an export and the coverage table must
give it exactly what they give on the collecting machine's file without a lakehouse.
"""

import json
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import AssetKey

from expirytrack_dagster.assets.candles import CANDLES
from expirytrack_dagster.checks import ALL_CHECKS
from expirytrack_dagster.checks.candle_checks import load_candle_rule_data
from expirytrack_dagster.checks.contract_checks import load_contract_rule_data
from expirytrack_dagster.checks.results import asset_rules, check_metadata
from expirytrack_dagster.coverage_report.table import stored_partitions
from expirytrack_dagster.exports.run import export
from expirytrack_dagster.exports.selection import Selection
from expirytrack_dagster.research import api
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster.storage.database import connect, open_connection
from expirytrack_dagster.storage.lakehouse import Lakehouse, attach, detach, lakehouse_for
from expirytrack_dagster_tests.pipeline import ASSETS, TINY_NIFTY, pipeline, sandbox_config, watched
from expirytrack_dagster_tests.research.conftest import EXPIRY

AT = "2025-08-14 09:17"
CONTRACTS = AssetKey("contracts")


def check_answers(collection: CollectionSettings, key: str) -> dict[str, Any]:
    """What every asset check rule says about ``key``: the checks' own body (load the partition
    through a read-only connection, run each registered rule, build its metadata)."""
    answers = {}
    for asset, load in ((CONTRACTS, load_contract_rule_data), (CANDLES, load_candle_rule_data)):
        with connect(collection.database, read_only=True) as db:
            data = load(db, key, collection)
        for rule in asset_rules(asset):
            result = rule.run(data)
            metadata = check_metadata(key, result)
            answers[rule.name] = (
                result.passed,
                {k: getattr(v, "value", v) for k, v in metadata.items()},
            )
    assert answers
    return answers


def research_answers(database: Path) -> list[pd.DataFrame]:
    chain = api.option_chain("NIFTY", EXPIRY, AT, database=database)
    tracker = api.oi_tracker("NIFTY", EXPIRY, AT, database=database)
    return [chain, pd.DataFrame([chain.attrs]), tracker, pd.DataFrame([tracker.attrs])]


def export_answer(database: Path, out: Path) -> dict[str, Any]:
    result = export(Selection(("NIFTY",), interval="5minute"), "csv", out, database=database)
    manifest = json.loads(result.manifest_path.read_text())
    return {
        "files": [(f["path"], f["rows"], f["sha256"]) for f in manifest["files"]],
        "rows": manifest["rows"],
        "synthetic": manifest["synthetic"],
        "data_source": manifest["data_source"],
    }


def test_checks_research_exports_read_the_lakehouse_as_the_file(tmp_path: Path, postgres_dsn: str):
    lake = Lakehouse(tmp_path / "lake", postgres_dsn)
    config = sandbox_config(seed=21, today=date(2025, 9, 1), extra_profiles=(TINY_NIFTY,))
    lakehouse_fields = {
        "lakehouse_path": str(lake.path),
        "lakehouse_catalog_url": postgres_dsn,
    }
    reader = tmp_path / "reader" / "expirytrack.duckdb"
    with pipeline(tmp_path / "writer", config, lookback_months=1, **lakehouse_fields) as p:
        try:
            assert lakehouse_for(p.database) == lake
            key = p.partition("NIFTY", EXPIRY)
            # The asset checks of this run already read through the lakehouse.
            result = p.materialize(key, selection=[*ASSETS, *ALL_CHECKS])
            assert result.success
            in_run = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
            assert set(lake.files()) == {"candles", "candle_fetch_status", "contracts", "expiries"}

            # The reading machine: its own file has the schema and no rows.
            attach(reader, lake)
            reader_settings = CollectionSettings(
                database=str(reader), underlyings=watched(), lookback_months=1, **lakehouse_fields
            )
            with connect(reader, read_only=True) as db:
                assert db.sql("SELECT count(*) FROM candles").fetchall()[0][0] > 50_000
            with open_connection(reader) as db:  # the file itself (a write connection)
                assert db.sql("SELECT count(*) FROM candles").fetchall() == [(0,)]
            on_lake = {
                "checks": check_answers(reader_settings, key),
                "research": research_answers(reader),
                "export": export_answer(reader, tmp_path / "export_lake"),
                "coverage": stored_partitions(reader),
            }

            # The collecting machine's file, read as today (no lakehouse).
            detach(p.database)
            file_settings = CollectionSettings(
                database=str(p.database), underlyings=watched(), lookback_months=1
            )
            on_file = {
                "checks": check_answers(file_settings, key),
                "research": research_answers(p.database),
                "export": export_answer(p.database, tmp_path / "export_file"),
                "coverage": stored_partitions(p.database),
            }
        finally:
            detach(p.database)
            detach(reader)

    assert on_lake["checks"] == on_file["checks"]
    assert in_run == {name: passed for name, (passed, _) in on_file["checks"].items()}
    for lake_frame, file_frame in zip(on_lake["research"], on_file["research"], strict=True):
        pd.testing.assert_frame_equal(lake_frame, file_frame)
    assert on_lake["export"] == on_file["export"]
    assert on_lake["export"]["synthetic"] is True
    assert len(on_lake["coverage"]) == len(on_file["coverage"]) > 0
    for lake_frame, file_frame in zip(on_lake["coverage"], on_file["coverage"], strict=True):
        pd.testing.assert_frame_equal(lake_frame, file_frame)
