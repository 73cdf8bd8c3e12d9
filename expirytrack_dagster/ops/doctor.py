"""``expirytrack doctor``: everything a user must know to trust the next run, one line each.

Each check returns a :class:`Finding` — ``OK`` with what it saw, ``WARN`` (works, but look) or
``FIX`` with the one thing to do. The checks are plain functions of paths, the Dagster instance and
the Upstox resource, so tests call them on real files and a real instance.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.scheduler.instigation import InstigatorStatus
from dagster._daemon.controller import get_daemon_statuses

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.credentials.deadline import describe_deadline, format_duration
from expirytrack_dagster.ops.api_usage import budget_chart, budget_history
from expirytrack_dagster.resources import UpstoxApi
from expirytrack_dagster.storage.database import DatabaseLocked, connect
from expirytrack_dagster.storage.landing import PRUNED_NAME
from expirytrack_dagster.storage.schema import (
    CURRENT_VERSION,
    SchemaError,
    readable_names,
    schema_version,
)
from expirytrack_dagster.upstox.errors import TokenExpired
from expirytrack_dagster.upstox.ledger import known_ledgers, mask_url, open_ledger
from expirytrack_dagster.upstox.ledger_postgres import LedgerUnavailable
from expirytrack_dagster.upstox.limiter import RateLimits, SharedRateLimiter

DAEMON_HEARTBEAT_TOLERANCE_S = 120.0
"""A daemon whose last heartbeat is older than this is not running (it beats every 30 s)."""
MIN_FREE_BYTES = 2 * 1024**3
"""Warn below this much free disk (and below twice what the database and landing zone hold)."""
BYTES_PER_CANDLE_GOAL = 24.0
"""Database + landing zone per stored candle that a long collection should stay under."""
BUDGET_WARN_SHARE = 0.9
"""Warn when this share of the 30-minute budget is in use."""
COLLECT_JOB = "collect_expiry"


@dataclass(frozen=True)
class Finding:
    """One line of the report: ``level`` is OK, WARN or FIX; ``fix`` says what to do."""

    topic: str
    level: str
    detail: str
    fix: str | None = None

    def line(self) -> str:
        text = f"{self.level:<4} {self.topic:<18} {self.detail}"
        return f"{text}\n{'':23}→ {self.fix}" if self.fix else text


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return 0


def _mb(size: float) -> str:
    return f"{size / 1e6:,.1f} MB"


def check_token(upstox: UpstoxApi, now: datetime | None = None) -> Finding:
    """The token runs would use, and when it dies."""
    now = now or datetime.now(IST)
    try:
        token = upstox.check_token_deadline(now=now)
    except TokenExpired as exc:
        return Finding("token", "FIX", exc.message.split(" — ")[0], "run `expirytrack login`")
    if token is None:
        return Finding("token", "OK", f"none needed: {upstox.describe_source()}")
    return Finding(
        "token",
        "OK",
        f"{token.source}, fingerprint {token.fingerprint}, "
        f"{describe_deadline(token.expires_at, now)}",
    )


def check_database(database: Path) -> list[Finding]:
    """Readable, at the current schema version, which source its data came from."""
    if not database.exists():
        return [
            Finding(
                "database",
                "WARN",
                f"{database} does not exist yet",
                "collect something: `expirytrack demo` or `expirytrack backfill SYMBOL`",
            )
        ]
    try:
        with connect(database, read_only=True, lock_timeout_s=10) as db:
            version = schema_version(db)
            tables = readable_names(db)
            sources = []
            if "expiries" in tables:
                sources = [
                    r[0]
                    for r in db.execute(
                        "SELECT DISTINCT data_source FROM expiries ORDER BY 1"
                    ).fetchall()
                ]
            candles = (
                db.execute("SELECT count(*) FROM candles").fetchall()[0][0]
                if "candles" in tables
                else 0
            )
            partitions = (
                db.execute("SELECT count(DISTINCT partition_key) FROM candles").fetchall()[0][0]
                if "candles" in tables
                else 0
            )
    except DatabaseLocked:
        return [
            Finding(
                "database",
                "WARN",
                f"{database} is being written by another process (a run?); not read",
                "run `expirytrack doctor` again when the write ends",
            )
        ]
    except (duckdb.Error, SchemaError) as exc:
        first = str(exc).splitlines()[0][:160]
        return [
            Finding(
                "database",
                "FIX",
                f"{database} cannot be read: {first}",
                "restore the last backup (`expirytrack restore ARCHIVE`) or rebuild it from the "
                "landing zone",
            )
        ]
    found = [
        Finding(
            "database",
            "OK",
            f"{database} readable ({_mb(_size(database))}), "
            f"{candles:,} candles in {partitions:,} partitions, "
            f"source: {', '.join(sources) or 'none yet'}",
        )
    ]
    if version is None or (version or 0) < CURRENT_VERSION:
        found.append(
            Finding(
                "schema",
                "FIX",
                f"version {version or 1}, this expirytrack uses {CURRENT_VERSION}",
                "run `expirytrack migrate` (or any run: it migrates on open); no data is lost",
            )
        )
    else:
        found.append(Finding("schema", "OK", f"version {version}"))
    return found


def check_disk(database: Path, landing_dir: Path) -> Finding:
    """Free space where the database lives, against what the database and landing hold."""
    where = database.parent if database.parent.exists() else Path.cwd()
    free = shutil.disk_usage(where).free
    held = _size(database) + _size(landing_dir)
    need = max(MIN_FREE_BYTES, 2 * held)
    detail = f"{_mb(free)} free at {where}; database + landing hold {_mb(held)}"
    if free < need:
        return Finding(
            "disk", "WARN", detail, f"free at least {_mb(need)} (twice what is stored) first"
        )
    return Finding("disk", "OK", detail)


def _stored_candles(database: Path) -> int | None:
    """Candle rows in the database (None when it cannot be read now)."""
    if not database.exists():
        return 0
    try:
        with connect(database, read_only=True, lock_timeout_s=5) as db:
            tables = readable_names(db)
            if "candles" not in tables:
                return 0
            return int(db.execute("SELECT count(*) FROM candles").fetchall()[0][0])
    except (duckdb.Error, DatabaseLocked):
        return None


def check_storage(database: Path, landing_dir: Path, retention: str = "keep") -> Finding:
    """Database and landing bytes, bytes per candle against the goal, partitions pruned.

    The database counts its file and write-ahead log, the landing zone every file in it (candle
    files and the day records of pruned partitions).
    """
    db_bytes = _size(database) + _size(database.with_name(database.name + ".wal"))
    landing_bytes = _size(landing_dir)
    landed = [d for d in landing_dir.glob("*/*") if d.is_dir()] if landing_dir.is_dir() else []
    pruned = sum(1 for d in landed if (d / PRUNED_NAME).exists())
    detail = (
        f"database {_mb(db_bytes)} + landing {_mb(landing_bytes)}; "
        f"{pruned} of {len(landed)} landed partitions pruned"
    )
    candles = _stored_candles(database)
    if candles is None:
        return Finding("storage", "OK", f"{detail}; candles not counted (database busy)")
    if not candles:
        return Finding("storage", "OK", f"{detail}; no candles stored yet")
    per_candle = (db_bytes + landing_bytes) / candles
    detail = (
        f"{per_candle:.1f} bytes per candle (goal <= {BYTES_PER_CANDLE_GOAL:.0f}): {detail}, "
        f"{candles:,} candles"
    )
    if per_candle <= BYTES_PER_CANDLE_GOAL:
        return Finding("storage", "OK", detail)
    fix = (
        "`expirytrack prune-landing` says why each partition still has its files"
        if retention == "prune_verified"
        else "to free the landing of verified partitions, set `collection: {landing_retention: "
        "prune_verified}` or run `expirytrack prune-landing` (rebuild then cannot restore them; "
        "`expirytrack backup` still copies the database)"
    )
    return Finding("storage", "WARN", detail, fix)


def check_daemon(instance: DagsterInstance, now: float | None = None) -> Finding:
    """Whether the Dagster daemon (sensors, backfills, run queue) beats."""
    statuses = get_daemon_statuses(
        instance,
        instance.get_required_daemon_types(),
        curr_time_seconds=now,
        heartbeat_tolerance_seconds=DAEMON_HEARTBEAT_TOLERANCE_S,
    )
    dead = sorted(t for t, s in statuses.items() if s.required and not s.healthy)
    beats = [s.last_heartbeat.timestamp for s in statuses.values() if s.last_heartbeat]
    if not dead:
        age = (now or datetime.now(UTC).timestamp()) - max(beats) if beats else 0.0
        return Finding("dagster daemon", "OK", f"running (last heartbeat {age:.0f} s ago)")
    if beats:
        seen = f"last heartbeat {format_duration_s(now, max(beats))} ago; silent: {', '.join(dead)}"
    else:
        seen = "no heartbeat ever recorded in this instance"
    return Finding(
        "dagster daemon",
        "FIX",
        f"not running ({seen}): sensors do not tick and queued runs wait",
        "start it: `expirytrack dev` (UI + daemon) or `dagster-daemon run`",
    )


def format_duration_s(now: float | None, then: float) -> str:
    """How long ago ``then`` was (epoch seconds), e.g. ``"3 h 20 min"``."""
    return format_duration(timedelta(seconds=(now or datetime.now(UTC).timestamp()) - then))


def check_sensors(instance: DagsterInstance, sensors: Sequence[tuple[str, bool]]) -> Finding:
    """Each sensor's state: ``sensors`` is (name, running by default) from the definitions."""
    stored = {
        state.instigator_name: state.status
        for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
    }
    running, stopped = [], []
    for name, default_running in sensors:
        status = stored.get(name)
        on = (
            status == InstigatorStatus.RUNNING
            if status in (InstigatorStatus.RUNNING, InstigatorStatus.STOPPED)
            else default_running
        )
        (running if on else stopped).append(name)
    detail = f"running: {', '.join(running) or 'none'}"
    if stopped:
        return Finding(
            "sensors",
            "FIX",
            f"{detail}; stopped: {', '.join(stopped)}",
            f"turn on in the UI (Automation) or `dagster sensor start {stopped[0]}`",
        )
    return Finding("sensors", "OK", detail)


def check_last_collection(instance: DagsterInstance, now: datetime | None = None) -> Finding:
    """The last successful collection run, and a failure since, if any."""
    now = now or datetime.now(UTC)
    done = instance.get_run_records(
        RunsFilter(job_name=COLLECT_JOB, statuses=[DagsterRunStatus.SUCCESS]), limit=1
    )
    failed = instance.get_run_records(
        RunsFilter(job_name=COLLECT_JOB, statuses=[DagsterRunStatus.FAILURE]), limit=1
    )
    if not done:
        return Finding(
            "last collection",
            "WARN",
            "no collection run has succeeded yet",
            "`expirytrack backfill SYMBOL` (or `expirytrack demo`)",
        )
    record = done[0]
    ended = record.end_time or record.create_timestamp.timestamp()
    ago = format_duration_s(now.timestamp(), ended)
    partition = record.dagster_run.tags.get("dagster/partition", "?")
    detail = f"{partition}, {ago} ago"
    if failed and (failed[0].end_time or 0) > ended:
        bad = failed[0]
        return Finding(
            "last collection",
            "WARN",
            f"{detail}; since then run {bad.dagster_run.run_id[:8]} "
            f"({bad.dagster_run.tags.get('dagster/partition', '?')}) failed",
            "read its log in the UI (Runs); run the partition again once fixed",
        )
    return Finding("last collection", "OK", detail)


def check_budget(
    state_dir: Path, limits: RateLimits, ledger_url: str | None = None
) -> list[Finding]:
    """Requests in the current 30-minute window, per Upstox user (one ledger each): the SQLite
    ledgers under ``state_dir``, or with ``ledger_url`` every ledger in that shared PostgreSQL
    database (requests from every machine)."""
    where = f", shared: {mask_url(ledger_url)}" if ledger_url else ""
    try:
        names = known_ledgers(ledger_url, state_dir)
    except (LedgerUnavailable, ValueError) as exc:
        return [
            Finding(
                "budget (30 min)",
                "FIX",
                str(exc),
                "check upstox.ledger_url / EXPIRYTRACK_LEDGER_URL and that the server answers; "
                "runs cannot be metered without it",
            )
        ]
    if not names:
        nothing = "no request made from this machine yet" if not ledger_url else "no request yet"
        return [Finding("budget (30 min)", "OK", nothing + where)]
    found = []
    for name in names:
        limiter = SharedRateLimiter(open_ledger(ledger_url, state_dir, name), limits)
        try:
            snapshot = limiter.snapshot()
        finally:
            limiter.close()
        window = snapshot["windows"][2]
        used, limit = window["count"], window["limit"]
        detail = f"{used:,} of {limit:,} requests used ({name}{where})"
        if snapshot["paused"]:
            detail += f"; paused after a 429 for {snapshot['wait_s']:.0f} s more"
        level = "WARN" if used >= BUDGET_WARN_SHARE * limit or snapshot["paused"] else "OK"
        fix = (
            "new runs wait for room; nothing to do unless this persists"
            if level == "WARN"
            else None
        )
        found.append(Finding("budget (30 min)", level, detail, fix))
    return found


def usage_lines(database: Path) -> list[str]:
    """The budget in use at the end of each recent run, as bars (empty without records)."""
    if not database.exists():
        return []
    try:
        history = budget_history(database)
    except (duckdb.Error, DatabaseLocked):
        return []
    return budget_chart(history)
