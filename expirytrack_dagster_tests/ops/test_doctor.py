"""`expirytrack doctor`: one line per concern, OK or the fix, on a real project and instance."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import duckdb
from dagster import DagsterInstance, Definitions, asset, define_asset_job
from dagster._daemon.types import DaemonHeartbeat

from expirytrack_dagster.ops.doctor import (
    check_budget,
    check_daemon,
    check_database,
    check_last_collection,
    check_sensors,
)
from expirytrack_dagster.partitions import expiry_partitions
from expirytrack_dagster.storage.schema import CURRENT_VERSION, TABLES_V1
from expirytrack_dagster.upstox.ledger import open_ledger
from expirytrack_dagster.upstox.limiter import RateLimits, SharedRateLimiter
from expirytrack_dagster_tests.ops.conftest import KEYS, Project


def lines(out: str) -> dict[str, str]:
    """``{topic: "LEVEL detail"}`` from doctor's report (fix lines appended to their finding)."""
    found: dict[str, str] = {}
    last = None
    for line in out.splitlines():
        if line[:4].strip() in ("OK", "WARN", "FIX"):
            last = line[5:23].strip()
            found[last] = f"{line[:4].strip()} {line[24:]}"
        elif line.strip().startswith("→") and last:
            found[last] += f" {line.strip()}"
    return found


def test_doctor_reports_every_concern_in_one_go(project: Project) -> None:
    done = project.main("doctor")
    report = lines(done.stdout)
    assert done.returncode == 1, done.stdout + done.stderr  # the daemon is not running here
    assert report["token"].startswith("OK none needed: embedded Upstox sandbox")
    assert report["database"].startswith("OK ")
    assert "120 candles in 2 partitions, source: sandbox" in report["database"]
    assert report["schema"] == f"OK version {CURRENT_VERSION}"
    assert report["disk"].startswith("OK ") and "database + landing hold" in report["disk"]
    # 120 candles in a database of a few hundred kB: far above the goal, and the opt-in named.
    assert report["storage"].startswith("WARN ")
    assert "bytes per candle (goal <= 24): database " in report["storage"]
    assert "0 of 2 landed partitions pruned, 120 candles" in report["storage"]
    assert "landing_retention: prune_verified" in report["storage"]
    assert report["dagster daemon"].startswith("FIX not running")
    assert "→ start it: `expirytrack dev`" in report["dagster daemon"]
    assert report["sensors"].startswith("OK running: new_expiry_sensor")
    assert report["last collection"].startswith(f"OK {KEYS[1]}, ")
    assert report["budget (30 min)"] == "OK 3 of 2,000 requests used (USER1)"


def test_a_missing_token_and_a_broken_database_each_name_their_fix(project: Project) -> None:
    project.database.write_bytes(b"not a duckdb file" * 1000)
    done = project.main("doctor", EXPIRYTRACK_SOURCE="upstox")
    report = lines(done.stdout)
    assert done.returncode == 1
    assert report["token"].startswith("FIX no Upstox access token")
    assert "→ run `expirytrack login`" in report["token"]
    assert report["database"].startswith("FIX ") and "cannot be read" in report["database"]
    assert "expirytrack restore" in report["database"]
    assert "Traceback" not in done.stderr


def test_an_old_schema_says_migrate_and_migrate_does_it_once(project: Project) -> None:
    project.database.unlink()
    with duckdb.connect(str(project.database)) as db:
        for ddl in TABLES_V1.values():
            db.execute(ddl)
        db.execute(
            "INSERT INTO expiries VALUES ('RELIANCE_2025-08-28', 'RELIANCE', 'k', "
            "DATE '2025-08-28', true, 'upstox', now())"
        )
    schema = {f.topic: f for f in check_database(project.database)}["schema"]
    assert schema.level == "FIX" and "expirytrack migrate" in schema.fix

    first = project.main("migrate")
    assert first.returncode == 0, first.stderr
    assert f"schema version 1 → {CURRENT_VERSION}: 2 (api_usage" in first.stdout
    again = project.main("migrate")
    assert again.returncode == 0
    assert f"schema version {CURRENT_VERSION}, nothing to do" in again.stdout
    assert {f.topic: f for f in check_database(project.database)}["schema"].level == "OK"
    with duckdb.connect(str(project.database), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM expiries").fetchall() == [(1,)]


def _beat(instance: DagsterInstance, at: float) -> None:
    for daemon_type in instance.get_required_daemon_types():
        instance.add_daemon_heartbeat(
            DaemonHeartbeat(at, daemon_type, str(uuid.uuid4()), errors=[])
        )


def test_the_daemon_is_running_while_its_heartbeats_are_recent(project: Project) -> None:
    now = time.time()
    with project.instance() as instance:
        assert check_daemon(instance, now=now).level == "FIX"
        _beat(instance, now - 20)
        running = check_daemon(instance, now=now)
        assert running.level == "OK" and "last heartbeat 20 s ago" in running.detail
        stale = check_daemon(instance, now=now + 600)
        assert stale.level == "FIX" and "last heartbeat 10m 20s ago" in stale.detail


def test_a_stopped_sensor_is_named_with_the_command_to_start_it(project: Project) -> None:
    with project.instance() as instance:
        found = check_sensors(instance, [("new_expiry_sensor", True), ("quiet_sensor", False)])
    assert found.level == "FIX" and "stopped: quiet_sensor" in found.detail
    assert found.fix == "turn on in the UI (Automation) or `dagster sensor start quiet_sensor`"


def test_a_failure_after_the_last_success_is_a_warning(project: Project) -> None:
    @asset(name="candles", partitions_def=expiry_partitions)
    def failing() -> None:
        raise RuntimeError("upstream broke")

    defs = Definitions(
        assets=[failing], jobs=[define_asset_job("collect_expiry", selection=["candles"])]
    )
    with project.instance() as instance:
        assert check_last_collection(instance).level == "OK"
        result = defs.resolve_job_def("collect_expiry").execute_in_process(
            instance=instance, partition_key=KEYS[0], raise_on_error=False
        )
        assert not result.success
        found = check_last_collection(instance)
    assert found.level == "WARN" and f"({KEYS[0]}) failed" in found.detail


def test_a_nearly_spent_budget_is_a_warning(tmp_path: Path) -> None:
    limits = RateLimits(per_second=50, per_minute=100, per_30_minutes=10)
    limiter = SharedRateLimiter(tmp_path / "ratelimit" / "USER2.sqlite", limits)
    for _ in range(9):
        limiter.acquire()
    limiter.close()
    (found,) = check_budget(tmp_path, limits)
    assert found.level == "WARN" and found.detail == "9 of 10 requests used (USER2)"
    assert check_budget(tmp_path / "empty", limits)[0].level == "OK"


def test_with_a_shared_postgres_ledger_the_budget_is_every_machines(
    project: Project, postgres_dsn: str, tmp_path: Path
) -> None:
    """Requests another machine made through the shared ledger are in this machine's report,
    and this machine's own SQLite ledger (USER1, 3 requests) is not: it is not the one in use."""
    limits = RateLimits(per_second=50, per_minute=100, per_30_minutes=2000)
    limiter = SharedRateLimiter(open_ledger(postgres_dsn, tmp_path / "other", "USER7"), limits)
    for _ in range(5):
        limiter.acquire()
    limiter.close()
    done = project.main("doctor", EXPIRYTRACK_LEDGER_URL=postgres_dsn)
    budget = lines(done.stdout)["budget (30 min)"]
    assert budget == f"OK 5 of 2,000 requests used (USER7, shared: {postgres_dsn})"


def test_a_shared_ledger_nearly_spent_or_silent_says_so_without_its_password(
    postgres_dsn: str, tmp_path: Path
) -> None:
    limits = RateLimits(per_second=50, per_minute=100, per_30_minutes=10)
    for name, requests in (("USER2", 9), ("USER3", 2)):
        limiter = SharedRateLimiter(open_ledger(postgres_dsn, tmp_path, name), limits)
        for _ in range(requests):
            limiter.acquire()
        limiter.close()
    found = check_budget(tmp_path / "empty", limits, postgres_dsn)
    assert [(f.level, f.detail) for f in found] == [
        ("WARN", f"9 of 10 requests used (USER2, shared: {postgres_dsn})"),
        ("OK", f"2 of 10 requests used (USER3, shared: {postgres_dsn})"),
    ]
    silent = "postgresql://desk:s3cret-pw@127.0.0.1:1/ledger"
    (found,) = check_budget(tmp_path, limits, silent)
    assert found.level == "FIX" and "127.0.0.1:1" in found.detail
    assert "s3cret-pw" not in found.detail + (found.fix or "")
