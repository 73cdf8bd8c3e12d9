"""`expirytrack demo`, the README's first command, run as a user would: a fresh instance and database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

REPO = Path(__file__).resolve().parents[1]


def test_demo_collects_through_dagster_and_says_where_the_data_came_from(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "data" / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    settings = tmp_path / "expirytrack.yaml"
    settings.write_text(
        'underlyings:\n  - symbol: RELIANCE\n    instrument_key: "NSE_EQ|INE002A01018"\n'
        "collection:\n  lookback_months: 1\n  contract_types: [FUT, CE]\n"
    )
    database = tmp_path / "expirytrack.duckdb"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("UPSTOX_", "EXPIRYTRACK_"))},
        "DAGSTER_HOME": str(home),
        "EXPIRYTRACK_CONFIG": str(settings),
        "EXPIRYTRACK_DATABASE": str(database),
        "EXPIRYTRACK_LANDING_DIR": str(tmp_path / "landing"),
        "EXPIRYTRACK_STATE_DIR": str(tmp_path / "state"),
        "EXPIRYTRACK_CREDENTIALS_DIR": str(tmp_path / "credentials"),
        "PYTHONPATH": str(REPO),
    }
    done = subprocess.run(
        [sys.executable, "-m", "expirytrack_dagster.cli", "demo", "--underlyings", "RELIANCE"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "SANDBOX" in out and "synthetic" in out
    assert "partitions    : 1" in out
    with duckdb.connect(str(database), read_only=True) as db:
        candles = db.execute("SELECT count(*) FROM candles").fetchone()[0]
        requests_line = next(line for line in out.splitlines() if "API requests" in line)
    assert f"candles       : {candles:,}" in out and candles > 0
    assert int(requests_line.split(":")[1].split("(")[0].replace(",", "")) > 0
    with DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs(RunsFilter(job_name="collect_expiry"))
    assert [r.status for r in runs] == [DagsterRunStatus.SUCCESS]
