"""The single-machine rate-limit ledger: one SQLite file per Upstox user, shared by every process.

Schema (one file per ledger; ``ledger.ledger_path`` names it)::

    grants(t REAL NOT NULL)  + index on t    -- wall-clock start time of every granted request
    pause(id = 1, until REAL, reason TEXT, set_at REAL)   -- at most one row: the shared pause

A grant is one short ``BEGIN IMMEDIATE`` transaction (WAL mode): the write lock is taken up front,
``now`` is read inside it, so the check-then-insert cannot race and ledger order is grant order.
Reads (``state``) are single SELECTs, each its own consistent snapshot in WAL mode.

Clock: this machine's wall clock (``time.time``; tests pass a fake one), because the ledger
outlives processes and reboots and every process must agree on what a stored time means. A
backward clock step of ``D`` seconds can only make callers wait up to ``D`` longer (safe); a
forward step can under-count, which no client-side clock can rule out — the shared pause after a
429 is the backstop.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from expirytrack_dagster.upstox.ledger import Decide, LedgerState

if TYPE_CHECKING:
    from expirytrack_dagster.upstox.limiter import Clock

__all__ = ["SqliteLedger"]

_T = TypeVar("_T")

# SQLite's own busy handler sleeps 1, 2, 5, 10… ms between tries, while a ledger transaction
# lasts tens of microseconds: with two processes sharing a ledger that capped throughput near
# 120 requests/s. So SQLite gives up at once (timeout 0) and _retry_locked retries after
# sub-millisecond jittered sleeps, for up to _LOCK_RETRY_S.
_BUSY_TIMEOUT_S = 0.0
_LOCK_RETRY_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS grants (t REAL NOT NULL);
CREATE INDEX IF NOT EXISTS grants_t ON grants (t);
CREATE TABLE IF NOT EXISTS pause (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    until REAL NOT NULL,
    reason TEXT NOT NULL,
    set_at REAL NOT NULL
);
"""

_PAUSE_SQL = """
INSERT INTO pause (id, until, reason, set_at) VALUES (1, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    reason = CASE WHEN excluded.until > until THEN excluded.reason ELSE reason END,
    set_at = CASE WHEN excluded.until > until THEN excluded.set_at ELSE set_at END,
    until = MAX(until, excluded.until)
"""

# One lock per ledger file per process: threads of one process then hand the SQLite write lock
# over through a real mutex instead of SQLite's sleep-and-poll busy handler (which backs off in
# 1..100 ms steps and would delay grants); only contention between processes reaches SQLite.
_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def _reset_locks_after_fork() -> None:
    # A lock held by some other thread at fork time would stay held forever in the child.
    global _process_locks_guard
    _process_locks_guard = threading.Lock()
    _process_locks.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_locks_after_fork)


def _process_lock(key: str) -> threading.Lock:
    with _process_locks_guard:
        lock = _process_locks.get(key)
        if lock is None:
            lock = _process_locks[key] = threading.Lock()
        return lock


def _is_lock_error(exc: sqlite3.OperationalError) -> bool:
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg


def _immediate(conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], _T]) -> _T:
    """Run ``body`` in one BEGIN IMMEDIATE transaction: the write lock is taken up front, so the
    reads and the insert that depends on them are atomic across processes."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = body(conn)
        conn.execute("COMMIT")
        return result
    except BaseException:
        if conn.in_transaction:
            # The original error is the one worth seeing, not a failed rollback.
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def _nth_sql(offsets: Sequence[int]) -> list[str]:
    # An index walk of at most offset + 1 entries from the newest end.
    return [f"(SELECT t FROM grants ORDER BY t DESC LIMIT 1 OFFSET {int(k)})" for k in offsets]


# Connections inherited across fork() must never be used (or closed: closing may checkpoint into a
# file the parent is using), so the child parks them here and opens its own.
_abandoned_connections: list[sqlite3.Connection] = []


class SqliteLedger:
    """The ledger in the SQLite file ``path`` (created, with its directory, on first use)."""

    def __init__(self, path: Path, clock: Clock | None = None) -> None:
        from expirytrack_dagster.upstox.limiter import SystemClock

        self.path = Path(path)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._lock_key = str(self.path.resolve())
        self._conn: sqlite3.Connection | None = None
        self._conn_pid = -1
        self._sql: dict[tuple[tuple[int, ...], int], str] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connection()  # create the schema now so configuration errors surface early

    def describe(self) -> str:
        return str(self.path)

    # -- connection and transactions ------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        pid = os.getpid()
        if self._conn is not None and self._conn_pid == pid:
            return self._conn
        if self._conn is not None:
            _abandoned_connections.append(self._conn)
            self._conn = None
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves; check_same_thread=False is
        # safe because every use is serialised by the per-process lock for this ledger.
        conn = sqlite3.connect(
            self.path,
            timeout=_BUSY_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            # Several processes may open a brand-new ledger at once: switching to WAL and creating
            # the schema can both report "locked" to the losers, so each step is retried; the DDL
            # is idempotent (IF NOT EXISTS) and runs inside a write transaction.
            self._retry_locked(lambda: conn.execute("PRAGMA journal_mode=WAL").fetchone())
            # NORMAL in WAL mode skips the fsync per commit; a power cut can lose only the last
            # few grants, and the machine cannot come back within the windows that they matter to.
            conn.execute("PRAGMA synchronous=NORMAL")
            self._retry_locked(lambda: _immediate(conn, _create_schema))
        except BaseException:
            conn.close()
            raise
        self._conn, self._conn_pid = conn, pid
        return conn

    def _retry_locked(self, fn: Callable[[], _T]) -> _T:
        deadline = time.monotonic() + _LOCK_RETRY_S
        delay = 0.0002
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if not _is_lock_error(exc) or time.monotonic() >= deadline:
                    raise
            # Real time, not self.clock: this is contention on a file, not rate-limit waiting.
            # Jitter keeps contending processes from retrying in lockstep.
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 0.005)

    def _transaction(self, body: Callable[[sqlite3.Connection], _T]) -> _T:
        """``_immediate`` under this process's lock for the ledger, retried while locked."""

        def attempt() -> _T:
            with _process_lock(self._lock_key):
                return _immediate(self._connection(), body)

        return self._retry_locked(attempt)

    def _read(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        # A single SELECT is its own consistent snapshot in WAL mode: no write lock needed.
        def attempt() -> _T:
            with _process_lock(self._lock_key):
                return fn(self._connection())

        return self._retry_locked(attempt)

    def close(self) -> None:
        with _process_lock(self._lock_key):
            if self._conn is not None and self._conn_pid == os.getpid():
                self._conn.close()
            self._conn = None

    # -- the ledger operations --------------------------------------------------------------

    def grant(self, decide: Decide, offsets: Sequence[int], horizon: float) -> float:
        key = (tuple(offsets), -1)
        sql = self._sql.get(key)
        if sql is None:
            # One statement returns everything a decision needs: the pause and the grants.
            sql = self._sql[key] = ", ".join(
                ["SELECT (SELECT until FROM pause WHERE id = 1)", *_nth_sql(offsets)]
            )

        def body(conn: sqlite3.Connection) -> float:
            now = self.clock.now()  # under the write lock: ledger order is grant order
            row = conn.execute(sql).fetchone()
            wait = decide(now, row[0], row[1:])
            if wait > 0.0:
                return wait
            conn.execute("INSERT INTO grants (t) VALUES (?)", (now,))
            # Index range delete: a no-op seek almost always, so it is cheaper to do it every
            # time than to schedule it.
            conn.execute("DELETE FROM grants WHERE t < ?", (now - horizon,))
            return 0.0

        return self._transaction(body)

    def state(self, offsets: Sequence[int], lengths: Sequence[float]) -> LedgerState:
        key = (tuple(offsets), len(lengths))
        sql = self._sql.get(key)
        if sql is None:
            counts = ["(SELECT COUNT(*) FROM grants WHERE t > ?)" for _ in lengths]
            sql = self._sql[key] = ", ".join(
                [
                    "SELECT (SELECT until FROM pause WHERE id = 1)",
                    "(SELECT reason FROM pause WHERE id = 1)",
                    *_nth_sql(offsets),
                    *counts,
                ]
            )

        def query(conn: sqlite3.Connection) -> LedgerState:
            now = self.clock.now()
            row = conn.execute(sql, [now - length for length in lengths]).fetchone()
            k = len(offsets)
            return LedgerState(
                now=now,
                pause_until=row[0],
                pause_reason=row[1],
                nth_recent=tuple(row[2 : 2 + k]),
                counts=tuple(int(c) for c in row[2 + k :]),
            )

        return self._read(query)

    def pause(self, seconds: float, reason: str) -> None:
        def body(conn: sqlite3.Connection) -> None:
            now = self.clock.now()
            conn.execute(_PAUSE_SQL, (now + seconds, reason, now))

        self._transaction(body)


def _create_schema(conn: sqlite3.Connection) -> None:
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
