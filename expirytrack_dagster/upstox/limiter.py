"""Keep every process and thread that shares one Upstox token inside the API's rate limits.

Upstox meters each user (access token) with three sliding windows — 50 requests/second,
500/minute, 2000/30 minutes — and answers 429 ``UDAPI10005`` (possibly followed by a suspension)
when any of them is exceeded. Dagster runs each run, and by default each step, in its own process,
and the sensor in the daemon, so an in-memory limiter cannot see the other users of the token. The
windows are therefore enforced through a small **SQLite ledger** shared by every process on the
machine.

Ledger (one file per token; the caller derives the path from a hash of the token)::

    grants(t REAL NOT NULL)  + index on t    -- wall-clock start time of every granted request
    pause(id = 1, until REAL, reason TEXT, set_at REAL)   -- at most one row: the shared pause

Granting is one short ``BEGIN IMMEDIATE`` transaction (WAL mode, busy timeout, ``database is
locked`` retried): read the pause and, for each window (limit ``L``, length ``W``), the ``L``-th
most recent grant time ``t_L``; the window has room at ``now`` iff ``t_L <= now - W`` (or there are
fewer than ``L`` grants). If every window has room and no pause is active, the grant is inserted
with ``t = now``; otherwise nothing is written and the caller learns the exact wait
``max(pause_until, max over windows of t_L + W) - now`` — the earliest moment at which all windows
have room, because rows only ever leave a window as time passes. ``now`` is read *inside* the write
lock, so ledger order is grant order across processes and the check-then-insert cannot race.

A caller that must not wait (the new-expiry sensor, which Dagster stops after 60 s) asks
``budget_wait(n)`` first: when ``n`` requests could start, or which window (or pause) holds them
and until when, without taking anything. A wait of a second or more in ``acquire`` is logged at
INFO on the ``expirytrack_dagster`` logger (which the instance routes to the run log).

Client-side windows are longer than the server's (``RateLimits.windows``): a relative
``safety_margin`` plus an absolute ``latency_allowance_s``, so that jitter between "granted here"
and "arrived there" never lets the server see more than ``L`` requests in any of its windows.

Why not pyrate-limiter (4.5.1 was read for this comparison): its ``SQLiteBucket`` does
check-then-insert inside a *deferred* transaction guarded by an in-process ``RLock``; safety across
processes needs the optional ``filelock`` dependency, whose lock its own source notes is
thread-local ("Multi Process - Single Thread … a hybrid lock may be needed"), which is exactly our
case (async/threads inside many Dagster step processes). It keeps integer-millisecond timestamps,
computes the retry delay from one failing rate only (so a caller may wake to find another window
still full), relies on a background "leaker" thread per process to prune, and has no notion of a
pause shared by every user of the bucket after a 429. The ledger below is a few hundred lines of
stdlib code with those properties built in and tested.

Clock: wall-clock seconds (``time.time``) because the ledger outlives processes and reboots and
every process must agree on what a stored time means. A backward clock step of ``D`` seconds can
only make callers wait up to ``D`` longer (safe); a forward step can under-count, which no
client-side clock can rule out — the shared ``pause`` after a 429 is the backstop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

__all__ = [
    "BudgetWait",
    "Clock",
    "RateLimits",
    "RateWindow",
    "SharedRateLimiter",
    "SystemClock",
    "ideal_schedule",
]

_T = TypeVar("_T")

log = logging.getLogger(__name__)

LOG_WAIT_AT_S = 1.0
"""A wait for budget at least this long is logged at INFO (what is waited for, and until when)."""
LOG_EVERY_S = 60.0
"""At most one such line per limiter object per this many seconds: many tasks wait at once."""

WINDOW_NAMES = ("per second", "per minute", "per 30 minutes")
"""How the three Upstox windows are named in messages, in ``RateLimits.windows()`` order."""

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


@dataclass(frozen=True)
class RateWindow:
    """At most ``limit`` requests may start within any interval of ``seconds`` seconds."""

    limit: int
    seconds: float


@dataclass(frozen=True)
class RateLimits:
    """Upstox's per-user limits plus the client-side margins that keep the server happy.

    ``time_scale`` multiplies every window length so tests and benchmarks can run the same limits
    against a sandbox scaled by the same factor. ``safety_margin`` (relative) and
    ``latency_allowance_s`` (absolute, not scaled) lengthen each window on the client side only.
    """

    per_second: int = 50
    per_minute: int = 500
    per_30_minutes: int = 2000
    time_scale: float = 1.0
    safety_margin: float = 0.02
    # Arrival jitter (network, a busy event loop, the GIL of a co-hosted server) reached ~0.2 s in
    # practice; 0.25 s costs only burst speed, since the 30-minute window is the one that binds.
    latency_allowance_s: float = 0.25

    def __post_init__(self) -> None:
        for name in ("per_second", "per_minute", "per_30_minutes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"RateLimits.{name} must be a positive int, got {value!r}")
        if not (math.isfinite(self.time_scale) and self.time_scale > 0):
            raise ValueError(f"RateLimits.time_scale must be > 0, got {self.time_scale!r}")
        for name in ("safety_margin", "latency_allowance_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"RateLimits.{name} must be >= 0, got {value!r}")

    def server_windows(self) -> tuple[RateWindow, ...]:
        """The windows as the (time-scaled) server enforces them, without client margins."""
        return (
            RateWindow(self.per_second, 1.0 * self.time_scale),
            RateWindow(self.per_minute, 60.0 * self.time_scale),
            RateWindow(self.per_30_minutes, 1800.0 * self.time_scale),
        )

    def windows(self) -> tuple[RateWindow, ...]:
        """Effective client-side windows: scaled, lengthened by the margin and the allowance."""
        return tuple(
            RateWindow(w.limit, w.seconds * (1.0 + self.safety_margin) + self.latency_allowance_s)
            for w in self.server_windows()
        )


def format_duration(seconds: float) -> str:
    """``1236.4`` → ``"20 min 36 s"``; ``4000`` → ``"1 h 06 min"``; ``0.3`` → ``"0.3 s"``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


@dataclass(frozen=True)
class BudgetWait:
    """How long until ``requests`` more requests could all start at once, and what holds them.

    ``wait_s`` is 0 when they could start now. ``reason`` names the binding constraint (a window
    with its use, or the shared pause after a 429); ``until`` is the wall-clock moment (seconds
    since the epoch) the wait ends, assuming nobody else takes budget meanwhile.
    """

    requests: int
    wait_s: float
    until: float
    reason: str | None

    def describe(self) -> str:
        """One line for logs and skip reasons, e.g. "1995 of 2000 requests per 30 minutes …"."""
        if self.wait_s <= 0:
            return f"room for {self.requests} requests now"
        at = datetime.fromtimestamp(self.until, UTC).strftime("%H:%M:%S UTC")
        return (
            f"{self.reason}; room for {self.requests} more at {at} "
            f"(in {format_duration(self.wait_s)})"
        )


class Clock(Protocol):
    """Wall-clock seconds (``time.time`` meaning, shared across processes) and a way to wait.

    A clock may also define ``async def sleep_async(seconds)``; ``acquire_async`` uses it instead
    of ``asyncio.sleep`` (fake clocks in tests advance their time there).
    """

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: ``time.time`` / ``time.sleep`` / ``asyncio.sleep``."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def sleep_async(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


def ideal_schedule(n: int, windows: Sequence[RateWindow]) -> list[float]:
    """Earliest send times of ``n`` requests from t=0 with empty sliding windows.

    Greedy, which is optimal for sliding windows: ``t_k = max(t_{k-1}, max_w t_{k-L_w} + W_w)``.
    The benchmark divides achieved time by ``ideal_schedule(n, server_windows)[-1]``.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    times: list[float] = []
    for k in range(n):
        t = times[-1] if times else 0.0
        for w in windows:
            if k >= w.limit:
                t = max(t, times[k - w.limit] + w.seconds)
        times.append(t)
    return times


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


# Connections inherited across fork() must never be used (or closed: closing may checkpoint into a
# file the parent is using), so the child parks them here and opens its own.
_abandoned_connections: list[sqlite3.Connection] = []


class SharedRateLimiter:
    """Meter requests for one token across every process and thread using ``ledger_path``.

    All users of one ledger must use the same ``RateLimits`` (they describe the token's limits);
    rows older than the longest window are pruned.
    """

    def __init__(self, ledger_path: Path, limits: RateLimits, clock: Clock | None = None) -> None:
        self.ledger_path = Path(ledger_path)
        self.limits = limits
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._windows = limits.windows()
        self._longest = max(w.seconds for w in self._windows)
        self._lock_key = str(self.ledger_path.resolve())
        self._conn: sqlite3.Connection | None = None
        self._conn_pid = -1
        self._last_wait_log = -math.inf
        # One statement returns everything a decision needs: the pause and, per window, the
        # L-th most recent grant (an index walk of at most L entries from the newest end).
        nth = ", ".join(
            f"(SELECT t FROM grants ORDER BY t DESC LIMIT 1 OFFSET {w.limit - 1})"
            for w in self._windows
        )
        self._decision_sql = f"SELECT (SELECT until FROM pause WHERE id = 1), {nth}"
        counts = ", ".join("(SELECT COUNT(*) FROM grants WHERE t > ?)" for _ in self._windows)
        # Same columns as the decision, plus the reason and the per-window counts, in one
        # statement so that the snapshot is consistent.
        self._snapshot_sql = (
            f"SELECT (SELECT until FROM pause WHERE id = 1), {nth}, "
            f"(SELECT reason FROM pause WHERE id = 1), {counts}"
        )
        self.ledger_path.parent.mkdir(parents=True, exist_ok=True)
        self._connection()  # create the schema now so configuration errors surface early

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
            self.ledger_path,
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

            self._retry_locked(lambda: self._create_schema(conn))
        except BaseException:
            conn.close()
            raise
        self._conn, self._conn_pid = conn, pid
        return conn

    @staticmethod
    def _create_schema(conn: sqlite3.Connection) -> None:
        # Not via _transaction: this may run while the per-process lock is already held.
        def create(c: sqlite3.Connection) -> None:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    c.execute(statement)

        _immediate(conn, create)

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

    def close(self) -> None:
        """Close this object's connection (the ledger and other users are unaffected)."""
        with _process_lock(self._lock_key):
            if self._conn is not None and self._conn_pid == os.getpid():
                self._conn.close()
            self._conn = None

    # -- decisions ------------------------------------------------------------------------

    def _wait_from(self, now: float, row: Sequence[Any]) -> float:
        """Seconds from ``now`` until no pause is active and every window has room."""
        target = now
        if row[0] is not None:
            target = max(target, float(row[0]))
        for window, nth_recent in zip(self._windows, row[1:], strict=True):
            if nth_recent is not None:
                target = max(target, float(nth_recent) + window.seconds)
        if target <= now:
            return 0.0
        wait = target - now
        # Float rounding must not leave a caller that sleeps exactly `wait` a hair short of
        # `target`: it would get another sub-nanosecond wait (and a fake clock might never move).
        while now + wait < target:
            wait = math.nextafter(wait, math.inf)
        return wait

    def try_acquire(self) -> float:
        """Record a request slot now and return 0.0, or return the seconds to wait (nothing
        recorded). The wait is exact: the earliest moment all windows have room, absent others."""

        def body(conn: sqlite3.Connection) -> float:
            # Read the clock under the write lock so ledger order is real grant order.
            now = self.clock.now()
            row = conn.execute(self._decision_sql).fetchone()
            wait = self._wait_from(now, row)
            if wait > 0.0:
                return wait
            conn.execute("INSERT INTO grants (t) VALUES (?)", (now,))
            # Index range delete: a no-op seek almost always, so it is cheaper to do it every
            # time than to schedule it.
            conn.execute("DELETE FROM grants WHERE t < ?", (now - self._longest,))
            return 0.0

        return self._transaction(body)

    def budget_wait(self, requests: int = 1) -> BudgetWait:
        """How long until ``requests`` requests could all be granted at once (nothing recorded).

        Never blocks: a caller with a deadline (the new-expiry sensor's tick) asks first and
        skips when the wait is too long. For each window of limit ``L`` the ``(L - n + 1)``-th
        most recent grant must have left it; ``requests`` may not exceed the smallest limit.
        """
        smallest = min(w.limit for w in self._windows)
        if not 1 <= requests <= smallest:
            raise ValueError(f"requests must be between 1 and {smallest}, got {requests!r}")
        nth = ", ".join(
            f"(SELECT t FROM grants ORDER BY t DESC LIMIT 1 OFFSET {w.limit - requests})"
            for w in self._windows
        )
        counts = ", ".join("(SELECT COUNT(*) FROM grants WHERE t > ?)" for _ in self._windows)
        sql = (
            "SELECT (SELECT until FROM pause WHERE id = 1), "
            f"(SELECT reason FROM pause WHERE id = 1), {nth}, {counts}"
        )

        def query(conn: sqlite3.Connection) -> tuple[float, Sequence[Any]]:
            now = self.clock.now()
            return now, conn.execute(sql, [now - w.seconds for w in self._windows]).fetchone()

        now, row = self._read(query)
        k = len(self._windows)
        pause_until, pause_reason = row[0], row[1]
        nth_recent, used = row[2 : 2 + k], row[2 + k :]
        until, reason = now, None
        if pause_until is not None and float(pause_until) > until:
            until = float(pause_until)
            reason = f"paused after {pause_reason or 'a 429 from Upstox'}"
        for i, (window, t, count) in enumerate(zip(self._windows, nth_recent, used, strict=True)):
            if t is not None and float(t) + window.seconds > until:
                until = float(t) + window.seconds
                name = WINDOW_NAMES[i] if i < len(WINDOW_NAMES) else f"per {window.seconds:g} s"
                reason = f"{int(count)} of {window.limit} requests {name} used"
        return BudgetWait(requests, max(0.0, until - now), until, reason)

    def _log_wait(self, wait: float) -> None:
        """Say at INFO what a wait of ``wait`` seconds is for, at most once per LOG_EVERY_S."""
        if wait < LOG_WAIT_AT_S:
            return
        mono = time.monotonic()
        if mono - self._last_wait_log < LOG_EVERY_S:
            return
        self._last_wait_log = mono
        log.info(f"Waiting for Upstox rate budget: {self.budget_wait(1).describe()}")

    def acquire(self) -> float:
        """Block until a slot is granted and recorded; return the seconds waited.

        A wait of a second or more is logged at INFO with its reason (see ``_log_wait``)."""
        start = self.clock.now()
        while (wait := self.try_acquire()) > 0.0:
            self._log_wait(wait)
            self.clock.sleep(wait)
        return max(0.0, self.clock.now() - start)

    async def acquire_async(self) -> float:
        """Like ``acquire`` but waits with ``asyncio.sleep`` (or the clock's ``sleep_async``).

        The ledger transaction runs in a worker thread: it is usually tens of microseconds, but
        under contention from other processes it retries on the file lock for up to seconds,
        and the event loop must keep serving the requests already in flight meanwhile."""
        sleep_async = getattr(self.clock, "sleep_async", None)
        start = self.clock.now()
        while (wait := await asyncio.to_thread(self.try_acquire)) > 0.0:
            self._log_wait(wait)
            if sleep_async is not None:
                await sleep_async(wait)
            else:
                await asyncio.sleep(wait)
        return max(0.0, self.clock.now() - start)

    # -- pause after a 429 -----------------------------------------------------------------

    async def pause_async(self, seconds: float, reason: str = "") -> None:
        """``pause`` from async code: the ledger write runs in a worker thread."""
        await asyncio.to_thread(self.pause, seconds, reason)

    def pause(self, seconds: float, reason: str = "") -> None:
        """Make every user of this ledger wait until ``now + seconds``.

        An existing later pause is kept (pauses extend, never shorten); the reason recorded is the
        one belonging to the pause that ends last.
        """
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"pause seconds must be a finite number >= 0, got {seconds!r}")

        def body(conn: sqlite3.Connection) -> None:
            now = self.clock.now()
            conn.execute(
                """
                INSERT INTO pause (id, until, reason, set_at) VALUES (1, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET
                    reason = CASE WHEN excluded.until > until THEN excluded.reason ELSE reason END,
                    set_at = CASE WHEN excluded.until > until THEN excluded.set_at ELSE set_at END,
                    until = MAX(until, excluded.until)
                """,
                (now + seconds, reason, now),
            )

        self._transaction(body)

    def paused_until(self) -> float | None:
        """Wall-clock end of the active pause, or None when no pause is active."""
        until = self._read(lambda c: c.execute("SELECT until FROM pause WHERE id = 1").fetchone())
        if until is None or until[0] is None:
            return None
        return float(until[0]) if float(until[0]) > self.clock.now() else None

    def _read(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        # A single SELECT is its own consistent snapshot in WAL mode: no write lock needed.
        def attempt() -> _T:
            with _process_lock(self._lock_key):
                return fn(self._connection())

        return self._retry_locked(attempt)

    def snapshot(self) -> dict[str, Any]:
        """Requests in each window now, the pause and the current wait — for logs and metadata."""

        def query(conn: sqlite3.Connection) -> tuple[float, Sequence[Any]]:
            now = self.clock.now()
            args = [now - w.seconds for w in self._windows]
            return now, conn.execute(self._snapshot_sql, args).fetchone()

        now, row = self._read(query)
        k = len(self._windows)
        decision, reason, counts = row[: k + 1], row[k + 1], row[k + 2 :]
        until = decision[0]
        active = until is not None and float(until) > now
        return {
            "ledger": str(self.ledger_path),
            "now": now,
            "windows": [
                {
                    "limit": w.limit,
                    "seconds": w.seconds,
                    "count": int(count),
                    "room": max(0, w.limit - int(count)),
                }
                for w, count in zip(self._windows, counts, strict=True)
            ],
            "paused": active,
            "paused_until": float(until) if active else None,
            "pause_reason": reason if active else None,
            "wait_s": self._wait_from(now, decision),
        }

    def __repr__(self) -> str:
        return f"SharedRateLimiter({str(self.ledger_path)!r}, {self.limits!r})"
