"""Keep every process and thread that shares one Upstox token inside the API's rate limits.

Upstox meters each user (access token) with three sliding windows — 50 requests/second,
500/minute, 2000/30 minutes — and answers 429 ``UDAPI10005`` (possibly followed by a suspension)
when any of them is exceeded. Dagster runs each run, and by default each step, in its own process,
and the sensor in the daemon, so an in-memory limiter cannot see the other users of the token. The
windows are therefore enforced through a **ledger** shared by every user of the token: this module
holds the window arithmetic, and a back end holds the rows (``upstox.ledger`` chooses one):

- ``ledger_sqlite`` — one SQLite file per user: every process on one machine (the default);
- ``ledger_postgres`` — rows in PostgreSQL: every process on every machine (``ledger_url``).

A ledger stores the start time of every granted request and at most one shared pause. Granting
is one short transaction that excludes every other grant on the ledger: read ``now``, the pause
and, for each window (limit ``L``, length ``W``), the ``L``-th most recent grant time ``t_L``; the
window has room at ``now`` iff ``t_L <= now - W`` (or there are fewer than ``L`` grants). If every
window has room and no pause is active, the grant is inserted with ``t = now``; otherwise nothing
is written and the caller learns the exact wait ``max(pause_until, max over windows of t_L + W) -
now`` — the earliest moment at which all windows have room, because rows only ever leave a window
as time passes. ``now`` is read *inside* the ledger's lock, so ledger order is grant order and the
check-then-insert cannot race.

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
pause shared by every user of the bucket after a 429, nor a back end shared across machines. The
limiter and its ledgers are a few hundred lines with those properties built in and tested.

Clock: each back end says which clock stamps its grants (this machine's wall clock for SQLite, the
database server's for PostgreSQL). This object only *sleeps* the waits the ledger computes, with
its own ``clock``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from expirytrack_dagster.upstox.ledger import Ledger

__all__ = [
    "BudgetWait",
    "Clock",
    "RateLimits",
    "RateWindow",
    "SharedRateLimiter",
    "SystemClock",
    "ideal_schedule",
]

log = logging.getLogger(__name__)

LOG_WAIT_AT_S = 1.0
"""A wait for budget at least this long is logged at INFO (what is waited for, and until when)."""
LOG_EVERY_S = 60.0
"""At most one such line per limiter object per this many seconds: many tasks wait at once."""

WINDOW_NAMES = ("per second", "per minute", "per 30 minutes")
"""How the three Upstox windows are named in messages, in ``RateLimits.windows()`` order."""


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


class SharedRateLimiter:
    """Meter requests for one Upstox user across every process and thread sharing its ledger.

    ``ledger`` is a back end (``ledger.open_ledger`` chooses one from the settings) or, for the
    single-machine default, the path of a SQLite ledger file. All users of one ledger must use the
    same ``RateLimits`` (they describe the user's limits); rows older than the longest window are
    pruned. ``clock`` is what this object sleeps with (and, for a path, the SQLite ledger's clock).
    """

    def __init__(
        self,
        ledger: Ledger | str | os.PathLike[str],
        limits: RateLimits,
        clock: Clock | None = None,
    ) -> None:
        self.limits = limits
        self.clock: Clock = clock if clock is not None else SystemClock()
        if isinstance(ledger, str | os.PathLike):
            from expirytrack_dagster.upstox.ledger_sqlite import SqliteLedger

            ledger = SqliteLedger(Path(ledger), self.clock)
        self.ledger: Ledger = ledger
        self._windows = limits.windows()
        self._lengths = tuple(w.seconds for w in self._windows)
        self._longest = max(self._lengths)
        # Per window, the L-th most recent grant decides whether there is room.
        self._offsets = tuple(w.limit - 1 for w in self._windows)
        self._last_wait_log = -math.inf
        self._gate: asyncio.Lock | None = None
        self._gate_loop: asyncio.AbstractEventLoop | None = None

    @property
    def ledger_path(self) -> Path | None:
        """The SQLite ledger file, or None when the ledger is not a file (PostgreSQL)."""
        path = getattr(self.ledger, "path", None)
        return Path(path) if path is not None else None

    def close(self) -> None:
        """Close this object's connection (the ledger and other users are unaffected)."""
        self.ledger.close()

    # -- decisions ------------------------------------------------------------------------

    def _wait_from(
        self, now: float, pause_until: float | None, nth_recent: Sequence[float | None]
    ) -> float:
        """Seconds from ``now`` until no pause is active and every window has room."""
        target = now
        if pause_until is not None:
            target = max(target, float(pause_until))
        for window, nth in zip(self._windows, nth_recent, strict=True):
            if nth is not None:
                target = max(target, float(nth) + window.seconds)
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
        return self.ledger.grant(self._wait_from, self._offsets, self._longest)

    def budget_wait(self, requests: int = 1) -> BudgetWait:
        """How long until ``requests`` requests could all be granted at once (nothing recorded).

        Never blocks: a caller with a deadline (the new-expiry sensor's tick) asks first and
        skips when the wait is too long. For each window of limit ``L`` the ``(L - n + 1)``-th
        most recent grant must have left it; ``requests`` may not exceed the smallest limit.
        """
        smallest = min(w.limit for w in self._windows)
        if not 1 <= requests <= smallest:
            raise ValueError(f"requests must be between 1 and {smallest}, got {requests!r}")
        state = self.ledger.state([w.limit - requests for w in self._windows], self._lengths)
        now = state.now
        until, reason = now, None
        if state.pause_until is not None and float(state.pause_until) > until:
            until = float(state.pause_until)
            reason = f"paused after {state.pause_reason or 'a 429 from Upstox'}"
        for i, (window, t, count) in enumerate(
            zip(self._windows, state.nth_recent, state.counts, strict=True)
        ):
            if t is not None and float(t) + window.seconds > until:
                until = float(t) + window.seconds
                name = WINDOW_NAMES[i] if i < len(WINDOW_NAMES) else f"per {window.seconds:g} s"
                reason = f"{count} of {window.limit} requests {name} used"
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

        The ledger transaction runs in a worker thread: it is usually well under a millisecond,
        but under contention from other processes it waits for the ledger's lock, and the event
        loop must keep serving the requests already in flight meanwhile."""
        sleep_async = getattr(self.clock, "sleep_async", None)
        start = self.clock.now()
        # Tasks of one event loop queue here and only the first asks the ledger: the wait it
        # learns is the earliest moment *any* request may start, so the others lose nothing by
        # queueing — and a wake-up is one ledger transaction instead of one per waiting task.
        async with self._async_gate():
            while (wait := await asyncio.to_thread(self.try_acquire)) > 0.0:
                self._log_wait(wait)
                if sleep_async is not None:
                    await sleep_async(wait)
                else:
                    await asyncio.sleep(wait)
        return max(0.0, self.clock.now() - start)

    def _async_gate(self) -> asyncio.Lock:
        """The queue of this object's waiting tasks in the running event loop."""
        loop = asyncio.get_running_loop()
        if self._gate is None or self._gate_loop is not loop:
            self._gate, self._gate_loop = asyncio.Lock(), loop
        return self._gate

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
        self.ledger.pause(seconds, reason)

    def paused_until(self) -> float | None:
        """Wall-clock end of the active pause (ledger's clock), or None when none is active."""
        state = self.ledger.state((), ())
        until = state.pause_until
        return float(until) if until is not None and float(until) > state.now else None

    def snapshot(self) -> dict[str, Any]:
        """Requests in each window now, the pause and the current wait — for logs and metadata."""
        state = self.ledger.state(self._offsets, self._lengths)
        now, until = state.now, state.pause_until
        active = until is not None and float(until) > now
        return {
            "ledger": self.ledger.describe(),
            "now": now,
            "windows": [
                {
                    "limit": w.limit,
                    "seconds": w.seconds,
                    "count": count,
                    "room": max(0, w.limit - count),
                }
                for w, count in zip(self._windows, state.counts, strict=True)
            ],
            "paused": active,
            "paused_until": float(until) if active else None,
            "pause_reason": state.pause_reason if active else None,
            "wait_s": self._wait_from(now, until, state.nth_recent),
        }

    def __repr__(self) -> str:
        return f"SharedRateLimiter({self.ledger.describe()!r}, {self.limits!r})"
