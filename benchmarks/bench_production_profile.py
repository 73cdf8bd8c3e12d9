"""The production profile's cost for one partition: Dagster's instance on PostgreSQL against the
single-machine SQLite instance, and the separate-process path the profile exists for.

Printed:
- one partition (RELIANCE 2025-08-28 from the sandbox, 25 contracts) collected in-process with
  ``materialize`` on an instance built from data/dagster_home (SQLite) and from deploy/dagster_home
  (a throwaway PostgreSQL server on loopback), seconds each (median over ``--repeat``) and their
  ratio: what the Postgres event log and pool slots add;
- the same partition queued with ``dagster job backfill -w deploy/workspace.yaml`` and launched by
  ``dagster-daemon run`` through ``dagster code-server start`` (the three processes of
  deploy/compose.yaml, by hand): seconds until the code server answers, and from the backfill
  command to the run's SUCCESS (dequeue, run process start-up and collection).

    python -m benchmarks.bench_production_profile [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from pathlib import Path

from dagster import DagsterInstance, RunsFilter

from expirytrack_dagster.partitions import PARTITIONS_NAME
from expirytrack_dagster.sandbox import Sandbox, run_sandbox
from expirytrack_dagster_tests.pipeline import (
    RELIANCE_KEY,
    SMALL_RELIANCE,
    STOCK_TODAY,
    pipeline,
    sandbox_config,
)
from expirytrack_dagster_tests.postgres_server import PostgresServer, running_postgres

REPO = Path(__file__).resolve().parents[1]
EXPIRY = date(2025, 8, 28)
KEY = "RELIANCE_2025-08-28"
CODE_SERVER_PORT = 4000
BIN = Path(sys.executable).parent


def _home(root: Path, profile: str) -> Path:
    home = root / f"{profile}_home"
    home.mkdir()
    shutil.copy(REPO / profile / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    return home


def _dagster_url(server: PostgresServer) -> str:
    return server.dsn(server.create_database()).replace("postgresql://", "postgresql+psycopg2://")


def _settings_file(root: Path) -> Path:
    path = root / "expirytrack.yaml"
    path.write_text(
        f'underlyings:\n  - symbol: RELIANCE\n    instrument_key: "{RELIANCE_KEY}"\n'
        "collection:\n  lookback_months: 1\n"
    )
    return path


def in_process_seconds(root: Path, profile: str, server: PostgresServer) -> float:
    """Collect the partition with ``materialize`` on an instance of ``profile``; seconds."""
    os.environ["EXPIRYTRACK_CONFIG"] = str(_settings_file(root))
    os.environ["EXPIRYTRACK_DAGSTER_PG_URL"] = _dagster_url(server)
    config = sandbox_config(seed=21, today=STOCK_TODAY, extra_profiles=(SMALL_RELIANCE,))
    with (
        pipeline(root, config, lookback_months=1) as local,
        DagsterInstance.from_config(str(_home(root, profile))) as instance,
    ):
        p = replace(local, instance=instance)
        key = p.partition("RELIANCE", EXPIRY)
        started = time.perf_counter()
        result = p.materialize(key)
        elapsed = time.perf_counter() - started
    assert result.success
    return elapsed


@contextmanager
def _processes(root: Path, env: dict[str, str]) -> Iterator[float]:
    """The code server and the daemon as separate processes; yields seconds to a healthy server."""
    logs = root / "logs"
    logs.mkdir()
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                str(BIN / "dagster"),
                *("code-server", "start", "-h", "localhost", "-p", str(CODE_SERVER_PORT)),
                *("-m", "expirytrack_dagster.definitions", "--location-name", "expirytrack"),
            ],
            cwd=root,
            env=env,
            stdout=(logs / "code-server.log").open("w"),
            stderr=subprocess.STDOUT,
        )
    ]
    try:
        health = [str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(CODE_SERVER_PORT)]
        while subprocess.run(health, env=env, capture_output=True).returncode != 0:
            if procs[0].poll() is not None or time.perf_counter() - started > 300:
                raise RuntimeError(f"the code server did not start: see {logs}")
            time.sleep(0.5)
        ready = time.perf_counter() - started
        procs.append(
            subprocess.Popen(
                [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "deploy" / "workspace.yaml")],
                cwd=root,
                env=env,
                stdout=(logs / "daemon.log").open("w"),
                stderr=subprocess.STDOUT,
            )
        )
        yield ready
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def queued_run_seconds(
    root: Path, server: PostgresServer, sandbox: Sandbox
) -> tuple[float, float, float, float]:
    """Seconds: to a healthy code server, from ``dagster job backfill`` to SUCCESS, and of that
    the run's wait in the queue (created to started) and its run process (started to ended)."""
    home = _home(root, "deploy")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTOX_", "EXPIRYTRACK_"))}
    env.update(
        DAGSTER_HOME=str(home),
        EXPIRYTRACK_DAGSTER_PG_URL=_dagster_url(server),
        EXPIRYTRACK_CODE_SERVER_HOST="localhost",
        EXPIRYTRACK_CONFIG=str(_settings_file(root)),
        EXPIRYTRACK_SOURCE="sandbox",
        EXPIRYTRACK_SANDBOX_URL=sandbox.base_url,
        EXPIRYTRACK_SANDBOX_TOKEN=sandbox.access_token,
        EXPIRYTRACK_SANDBOX_CA=str(sandbox.ca_cert_path),
        EXPIRYTRACK_DATABASE=str(root / "expirytrack.duckdb"),
        EXPIRYTRACK_LANDING_DIR=str(root / "landing"),
        EXPIRYTRACK_STATE_DIR=str(root / "state"),
    )
    os.environ["EXPIRYTRACK_DAGSTER_PG_URL"] = env["EXPIRYTRACK_DAGSTER_PG_URL"]
    with DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions(PARTITIONS_NAME, [KEY])
    with _processes(root, env) as ready:
        started = time.perf_counter()
        subprocess.run(
            [
                str(BIN / "dagster"),
                *("job", "backfill", "-w", str(REPO / "deploy" / "workspace.yaml")),
                *("-j", "collect_expiry", "--partitions", KEY, "--noprompt"),
            ],
            cwd=root,
            env=env,
            check=True,
            capture_output=True,
        )
        with DagsterInstance.from_config(str(home)) as instance:
            while True:
                records = instance.get_run_records(RunsFilter(job_name="collect_expiry"))
                if records and records[0].dagster_run.is_finished:
                    break
                if time.perf_counter() - started > 900:
                    raise RuntimeError("the queued run did not finish within 15 minutes")
                time.sleep(0.5)
        elapsed = time.perf_counter() - started
    record = records[0]
    if record.dagster_run.status.value != "SUCCESS":
        raise RuntimeError(f"the queued run ended {record.dagster_run.status.value}: see {root}")
    queued = record.start_time - record.create_timestamp.timestamp()
    return ready, elapsed, queued, record.end_time - record.start_time


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with running_postgres() as server, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        figures: dict[str, list[float]] = {"data": [], "deploy": []}
        for n in range(args.repeat):
            for profile in ("data", "deploy"):
                run_root = root / f"{profile}-{n}"
                run_root.mkdir()
                figures[profile].append(in_process_seconds(run_root, profile, server))
        sqlite, postgres = (statistics.median(figures[p]) for p in ("data", "deploy"))
        print(
            f"one partition ({KEY}, 25 contracts), in-process materialize, median of {args.repeat}:"
        )
        print(f"  SQLite instance (data/dagster_home)       {sqlite:6.1f} s")
        print(f"  PostgreSQL instance (deploy/dagster_home) {postgres:6.1f} s")
        print(f"  ratio PostgreSQL / SQLite                 {postgres / sqlite:6.2f}")
        config = sandbox_config(seed=21, today=STOCK_TODAY, extra_profiles=(SMALL_RELIANCE,))
        with run_sandbox(config, in_process=False) as sandbox:
            queued_root = root / "queued"
            queued_root.mkdir()
            ready, elapsed, queued, running = queued_run_seconds(queued_root, server, sandbox)
        print("the same partition through the separate processes (sandbox over TLS on loopback):")
        print(f"  code server healthy after                 {ready:6.1f} s")
        print(f"  dagster job backfill -> run SUCCESS       {elapsed:6.1f} s")
        print(f"    of which queued (created -> started)    {queued:6.1f} s")
        print(f"    of which the run (started -> ended)     {running:6.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
