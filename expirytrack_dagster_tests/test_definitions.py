"""The Definitions as a user gets them: shape, configuration from the environment, concurrent runs."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path

import duckdb
from dagster import DefaultSensorStatus, Definitions, instance_for_test, materialize

from expirytrack_dagster.assets import expiries
from expirytrack_dagster.definitions import build_definitions, defs
from expirytrack_dagster.partitions import build_partition_key, expiry_partitions
from expirytrack_dagster.project_settings import load_settings
from expirytrack_dagster.sandbox_resource import SandboxResource
from expirytrack_dagster_tests.pipeline import SMALL_RELIANCE, sandbox_config

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


def test_an_embedded_sandbox_serves_a_run_in_process(tmp_path: Path) -> None:
    """Settings given as a mapping pick the sandbox resource; its sandbox lives in the run."""
    env = {
        "EXPIRYTRACK_CONFIG": str(tmp_path / "absent.yaml"),
        "EXPIRYTRACK_SOURCE": "sandbox",
        "EXPIRYTRACK_DATABASE": str(tmp_path / "expirytrack.duckdb"),
        "EXPIRYTRACK_LANDING_DIR": str(tmp_path / "landing"),
        "EXPIRYTRACK_STATE_DIR": str(tmp_path / "state"),
    }
    built = build_definitions(load_settings(env=env))
    upstox = built.resources["upstox"]
    assert isinstance(upstox, SandboxResource) and not upstox.sandbox_url

    async def last_expiry() -> date:
        async with upstox.client() as client:  # a sandbox like the run's: same seed, same days
            return (await client.get_expiries("NSE_INDEX|Nifty 50"))[-1]

    expiry = asyncio.run(last_expiry())
    upstox.teardown_after_execution(None)
    key = build_partition_key("NIFTY", expiry)
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(expiry_partitions.name, [key])
        result = materialize(
            [expiries], partition_key=key, resources=built.resources, instance=instance
        )
    assert result.success
    metadata = result.asset_materializations_for_node("expiries")[0].metadata
    assert metadata["data_source"].value == "embedded Upstox sandbox (synthetic data)"
    with duckdb.connect(env["EXPIRYTRACK_DATABASE"], read_only=True) as db:
        assert db.execute("SELECT data_source FROM expiries").fetchall() == [("sandbox",)]


def test_two_concurrent_runs_both_succeed(tmp_path: Path) -> None:
    from expirytrack_dagster.sandbox import run_sandbox

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "data" / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    settings = tmp_path / "expirytrack.yaml"
    settings.write_text(
        'underlyings:\n  - symbol: RELIANCE\n    instrument_key: "NSE_EQ|INE002A01018"\n'
        # The subject is two runs sharing one DuckDB file: futures alone prove it.
        "collection:\n  lookback_months: 1\n  contract_types: [FUT]\n"
        "upstox:\n  per_second: 100000\n  per_minute: 1000000\n  per_30_minutes: 10000000\n"
    )
    database = tmp_path / "expirytrack.duckdb"
    keys = ["RELIANCE_2025-07-31", "RELIANCE_2025-08-28"]
    config = sandbox_config(seed=21, today=date(2025, 10, 1), extra_profiles=(SMALL_RELIANCE,))
    with run_sandbox(config) as sb:
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
        # Each run in the child process `expirytrack backfill` starts for a partition.
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "expirytrack_dagster.runs", key, str(uuid.uuid4())],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for key in keys
        ]
        outputs = [run.communicate(timeout=240) for run in runs]
    verdicts = [out.strip().splitlines()[0] if out.strip() else err[-2000:] for out, err in outputs]
    assert [run.returncode for run in runs] == [0, 0], verdicts
    for key, verdict in zip(keys, verdicts, strict=True):
        assert verdict.startswith(f"{key}: run ") and " ok in " in verdict, verdict
    with duckdb.connect(str(database), read_only=True) as db:
        stored = db.execute(
            "SELECT partition_key, count(DISTINCT expired_instrument_key) FROM contracts GROUP BY 1 ORDER BY 1"
        ).fetchall()
        candles = dict(
            db.execute("SELECT partition_key, count(*) FROM candles GROUP BY 1").fetchall()
        )
    assert [k for k, _ in stored] == keys and all(n > 0 for _, n in stored)
    assert all(candles[k] > 0 for k in keys)
