"""The Definitions as a user gets them: shape, configuration from the environment, concurrent runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
from dagster import DefaultSensorStatus, Definitions

from expirytrack_dagster.definitions import build_definitions, defs
from expirytrack_dagster.partitions import expiry_partitions
from expirytrack_dagster_tests.pipeline import sandbox_config

REPO = Path(__file__).resolve().parents[1]


def test_definitions_load_and_have_the_designed_shape() -> None:
    Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"expiries", "contracts", "candles"} <= keys
    job = defs.resolve_job_def("collect_expiry")
    assert job.partitions_def == expiry_partitions
    sensor = defs.resolve_sensor_def("new_expiry_sensor")
    assert sensor.default_status == DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 3600


def test_settings_file_configures_collection(tmp_path: Path) -> None:
    built = build_definitions({"collection": {"interval": "5minute", "lookback_months": 2}})
    collection = built.resources["collection"]
    assert (collection.interval, collection.lookback_months) == ("5minute", 2)


RUN_ONE = """
import sys
from dagster import DagsterInstance
from expirytrack_dagster.definitions import defs
result = defs.resolve_job_def("collect_expiry").execute_in_process(
    partition_key=sys.argv[1], instance=DagsterInstance.get(), raise_on_error=False
)
print("SUCCESS" if result.success else "FAILURE", flush=True)
"""


def test_two_concurrent_runs_both_succeed(tmp_path: Path) -> None:
    from expirytrack_dagster.sandbox import run_sandbox

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "data" / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    settings = tmp_path / "expirytrack.yaml"
    settings.write_text(
        'underlyings:\n  - symbol: RELIANCE\n    instrument_key: "NSE_EQ|INE002A01018"\n'
        "collection:\n  lookback_months: 1\n"
        "upstox:\n  per_second: 100000\n  per_minute: 1000000\n  per_30_minutes: 10000000\n"
    )
    database = tmp_path / "expirytrack.duckdb"
    keys = ["RELIANCE_2025-07-31", "RELIANCE_2025-08-28"]
    with run_sandbox(sandbox_config(seed=21, today=date(2025, 10, 1))) as sb:
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "EXPIRYTRACK_CONFIG": str(settings),
            "EXPIRYTRACK_SOURCE": "sandbox",
            "EXPIRYTRACK_SANDBOX_URL": sb.base_url,
            "EXPIRYTRACK_SANDBOX_TOKEN": sb.access_token,
            "EXPIRYTRACK_SANDBOX_CA": str(sb.ca_cert_path),
            "EXPIRYTRACK_DATABASE": str(database),
            "EXPIRYTRACK_LANDING_DIR": str(tmp_path / "landing"),
            "EXPIRYTRACK_STATE_DIR": str(tmp_path / "state"),
            "PYTHONPATH": str(REPO),
        }
        env.pop("UPSTOX_ACCESS_TOKEN", None)
        from dagster import DagsterInstance

        with DagsterInstance.from_config(str(home)) as instance:
            instance.add_dynamic_partitions(expiry_partitions.name, keys)
        runs = [
            subprocess.Popen(
                [sys.executable, "-c", RUN_ONE, key],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for key in keys
        ]
        outputs = [run.communicate(timeout=240) for run in runs]
    verdicts = [
        out.strip().splitlines()[-1] if out.strip() else err[-2000:] for out, err in outputs
    ]
    assert verdicts == ["SUCCESS", "SUCCESS"], verdicts
    with duckdb.connect(str(database), read_only=True) as db:
        stored = db.execute(
            "SELECT partition_key, count(DISTINCT expired_instrument_key) FROM contracts GROUP BY 1 ORDER BY 1"
        ).fetchall()
        candles = dict(
            db.execute("SELECT partition_key, count(*) FROM candles GROUP BY 1").fetchall()
        )
    assert [k for k, _ in stored] == keys and all(n > 0 for _, n in stored)
    assert all(candles[k] > 0 for k in keys)
