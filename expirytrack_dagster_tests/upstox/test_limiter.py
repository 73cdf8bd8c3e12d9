"""Tests for the cross-process Upstox rate limiter: exact waits, shared state, threads, processes.

Every test that touches a ledger runs against both back ends: the SQLite file (one machine) and
PostgreSQL (a real server on loopback, a fresh database per test; see ``conftest.postgres_dsn``).
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import random
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from expirytrack_dagster.upstox import ledger_sqlite
from expirytrack_dagster.upstox import limiter as limiter_module
from expirytrack_dagster.upstox.ledger import Ledger
from expirytrack_dagster.upstox.ledger_postgres import SCHEMA, PostgresLedger
from expirytrack_dagster.upstox.ledger_sqlite import SqliteLedger
from expirytrack_dagster.upstox.limiter import (
    Clock,
    RateLimits,
    RateWindow,
    SharedRateLimiter,
    SystemClock,
    ideal_schedule,
)


class FakeClock:
    """Deterministic wall clock: time moves only when somebody sleeps."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.t += seconds

    async def sleep_async(self, seconds: float) -> None:
        self.sleep(seconds)


@dataclass(frozen=True)
class Backend:
    """One ledger back end under test: ``kind`` "sqlite" (files under ``where``) or "postgres"
    (``where`` is the database URL). Picklable, so spawned processes can open the same ledgers."""

    kind: str
    where: str

    def ledger(self, name: str = "ledger", clock: Clock | None = None) -> Ledger:
        """The ledger ``name``. ``clock`` None: the back end's own clock (this machine's for
        SQLite, the database server's for PostgreSQL)."""
        if self.kind == "sqlite":
            return SqliteLedger(self.path(name), clock)
        return PostgresLedger(self.where, name, clock)

    def limiter(
        self, limits: RateLimits, clock: Clock | None = None, name: str = "ledger"
    ) -> SharedRateLimiter:
        """A limiter on ledger ``name`` whose grants are stamped by ``clock`` (when given)."""
        return SharedRateLimiter(self.ledger(name, clock), limits, clock)

    def path(self, name: str = "ledger") -> Path:
        return Path(self.where) / f"{name}.sqlite"

    def times(self, name: str = "ledger") -> list[float]:
        """Every grant time the ledger holds, ascending — read directly, not through the code."""
        if self.kind == "sqlite":
            with sqlite3.connect(self.path(name)) as conn:
                return [row[0] for row in conn.execute("SELECT t FROM grants ORDER BY t")]
        import psycopg2

        conn = psycopg2.connect(self.where)
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT t FROM {SCHEMA}.grants WHERE ledger = %s ORDER BY t", (name,))
                return [row[0] for row in cur.fetchall()]
        finally:
            conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each ledger test runs once on SQLite and once on a real PostgreSQL database."""
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "ledgers"))
    return Backend("postgres", request.getfixturevalue("postgres_dsn"))


def assert_windows_respected(
    times: Sequence[float], windows: Sequence[RateWindow], tol: float = 1e-6
) -> None:
    """No half-open interval (a - W, a] holds more than L grants, for every window (L, W).

    For sorted times that is exactly: t[i] - t[i - L] >= W for every i >= L.
    """
    ts = sorted(times)
    for w in windows:
        for i in range(w.limit, len(ts)):
            gap = ts[i] - ts[i - w.limit]
            assert gap >= w.seconds - tol, (
                f"{w.limit + 1} grants within {gap:.9f}s < window {w.seconds}s (ending at #{i})"
            )


class RecordingClock(SystemClock):
    """The real clock, remembering each thread's last reading.

    try_acquire reads the clock exactly once, inside the ledger's lock, so right after a grant
    the calling thread's last reading is the exact time written to the ledger (which prunes old
    rows, so it cannot be the only record).
    """

    def __init__(self) -> None:
        self._local = threading.local()

    @property
    def last(self) -> float:
        return self._local.last

    def now(self) -> float:
        self._local.last = super().now()
        return self._local.last


def acquire_recording(limiter: SharedRateLimiter, clock: RecordingClock) -> float:
    """Blocking acquire that returns the exact grant time recorded in the ledger."""
    while (wait := limiter.try_acquire()) > 0.0:
        clock.sleep(wait)
    return clock.last


# -- configuration ------------------------------------------------------------------------


def test_windows_are_scaled_and_lengthened_by_both_margins() -> None:
    limits = RateLimits()
    assert limits.server_windows() == (
        RateWindow(50, 1.0),
        RateWindow(500, 60.0),
        RateWindow(2000, 1800.0),
    )
    got = limits.windows()
    assert [w.limit for w in got] == [50, 500, 2000]
    assert [w.seconds for w in got] == pytest.approx([1.27, 61.45, 1836.25])

    scaled = RateLimits(time_scale=0.01, safety_margin=0.1, latency_allowance_s=0.005)
    # The allowance is absolute: it is not scaled with the windows.
    assert [w.seconds for w in scaled.windows()] == pytest.approx([0.016, 0.665, 19.805])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"per_second": 0},
        {"per_minute": -1},
        {"per_30_minutes": 2.5},
        {"time_scale": 0.0},
        {"safety_margin": -0.1},
        {"latency_allowance_s": math.nan},
    ],
)
def test_invalid_limits_are_rejected(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        RateLimits(**kwargs)


def test_ideal_schedule_small_case_by_hand() -> None:
    windows = (RateWindow(2, 1.0), RateWindow(3, 10.0))
    assert ideal_schedule(6, windows) == [0.0, 0.0, 1.0, 10.0, 10.0, 11.0]
    assert ideal_schedule(0, windows) == []


def test_ideal_schedule_under_upstox_server_windows() -> None:
    server = RateLimits().server_windows()
    times = ideal_schedule(2001, server)
    assert times[49] == 0.0 and times[50] == 1.0  # 51st request waits a second
    assert times[499] == 9.0 and times[500] == 60.0  # 501st waits for the minute
    assert times[2000] == 1800.0  # 2001st waits for the 30-minute window


# -- fake clock: exactness, invariants, shared state ----------------------------------------


@pytest.mark.parametrize(("start", "tol"), [(0.0, 1e-9), (1_700_000_000.0, 1e-4)])
def test_sequential_grants_are_as_early_as_allowed(
    backend: Backend, start: float, tol: float
) -> None:
    clock = FakeClock(start)
    limits = RateLimits()
    limiter = backend.limiter(limits, clock)
    n = 2100  # crosses all three windows (the 2001st grant waits for the 30-minute one)
    grants = []
    for _ in range(n):
        before = clock.now()
        waited = limiter.acquire()
        grants.append(clock.now())
        assert waited == pytest.approx(clock.now() - before, abs=1e-9)
    ideal = ideal_schedule(n, limits.windows())
    assert [g - start for g in grants] == pytest.approx(ideal, abs=tol)
    assert_windows_respected(grants, limits.windows(), tol=tol)
    # Rows older than the longest window are pruned, the rest are kept.
    longest = max(w.seconds for w in limits.windows())
    assert backend.times() == sorted(g for g in grants if g >= grants[-1] - longest)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_sequence_never_exceeds_a_window_and_grants_at_the_earliest_moment(
    backend: Backend, seed: int
) -> None:
    rng = random.Random(seed)
    clock = FakeClock()
    limits = RateLimits(per_second=3, per_minute=7, per_30_minutes=12)
    windows = limits.windows()
    # Two objects on one ledger, used in random order: they must behave as one limiter.
    limiters = [backend.limiter(limits, clock), backend.limiter(limits, clock)]

    model_grants: list[float] = []
    model_pause = -math.inf

    def model_earliest(now: float) -> float:
        t = max(now, model_pause)
        for w in windows:
            if len(model_grants) >= w.limit:
                t = max(t, model_grants[-w.limit] + w.seconds)
        return t

    for _ in range(1500):
        lim = rng.choice(limiters)
        action = rng.random()
        now = clock.now()
        if action < 0.65:
            expected = model_earliest(now)
            waited = lim.acquire()
            assert clock.now() == pytest.approx(expected, abs=1e-6)
            assert waited == pytest.approx(expected - now, abs=1e-6)
            model_grants.append(clock.now())
        elif action < 0.85:
            wait = lim.try_acquire()
            expected_wait = model_earliest(now) - now
            assert wait == pytest.approx(max(0.0, expected_wait), abs=1e-6)
            if wait == 0.0:
                model_grants.append(now)
            assert clock.now() == now  # try_acquire never sleeps
        elif action < 0.9:
            seconds = rng.choice([0.0, rng.uniform(0, 2), rng.uniform(0, 120)])
            lim.pause(seconds, reason=f"429 at {now}")
            model_pause = max(model_pause, now + seconds)
        else:
            # Idle gaps on every scale: inside the per-second window up to past the 30-minute one.
            clock.sleep(10 ** rng.uniform(-3, 3.5))

    assert len(model_grants) > 300
    assert_windows_respected(model_grants, windows)
    assert_windows_respected(model_grants, limits.server_windows())


def test_pause_blocks_everyone_until_its_end_and_only_ever_extends(backend: Backend) -> None:
    clock = FakeClock()
    limits = RateLimits()
    a = backend.limiter(limits, clock)
    b = backend.limiter(limits, clock)
    t0 = clock.now()
    assert a.paused_until() is None

    a.pause(5.0, reason="429 UDAPI10005")
    assert b.paused_until() == pytest.approx(t0 + 5.0)
    assert b.try_acquire() == pytest.approx(5.0)

    a.pause(2.0, reason="shorter")  # must not shorten
    assert b.paused_until() == pytest.approx(t0 + 5.0)
    assert b.snapshot()["pause_reason"] == "429 UDAPI10005"

    clock.sleep(1.0)
    b.pause(9.0, reason="longer")  # extends to t0 + 10
    assert a.paused_until() == pytest.approx(t0 + 10.0)
    snap = a.snapshot()
    assert snap["paused"] is True
    assert snap["pause_reason"] == "longer"
    assert snap["wait_s"] == pytest.approx(9.0)

    assert a.acquire() == pytest.approx(9.0)
    assert clock.now() == pytest.approx(t0 + 10.0)  # granted exactly when the pause ends
    assert a.paused_until() is None and b.paused_until() is None
    assert b.snapshot()["paused"] is False

    with pytest.raises(ValueError):
        a.pause(-1.0)


def test_two_limiter_objects_on_one_ledger_share_windows(backend: Backend) -> None:
    clock = FakeClock()
    limits = RateLimits(per_second=3, per_minute=100, per_30_minutes=100)
    a = backend.limiter(limits, clock)
    b = backend.limiter(limits, clock)
    assert [a.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    per_second = limits.windows()[0].seconds
    assert b.try_acquire() == pytest.approx(per_second)
    snap = b.snapshot()
    assert [w["count"] for w in snap["windows"]] == [3, 3, 3]
    assert snap["windows"][0]["room"] == 0
    assert snap["wait_s"] == pytest.approx(per_second)
    a.close()
    # A fresh object (as in a new Dagster step process) sees the same ledger.
    c = backend.limiter(limits, clock)
    assert c.try_acquire() == pytest.approx(per_second)
    # Another ledger (another Upstox user) has its own windows.
    assert backend.limiter(limits, clock, name="other-user").try_acquire() == 0.0
    # A closed object reopens its connection when used again.
    assert a.try_acquire() == pytest.approx(per_second)


def test_acquire_async_waits_with_the_clock_and_matches_the_schedule(backend: Backend) -> None:
    clock = FakeClock(0.0)
    limits = RateLimits(per_second=4, per_minute=10, per_30_minutes=20)
    limiter = backend.limiter(limits, clock)

    async def run() -> list[float]:
        grants = []
        for _ in range(25):
            await limiter.acquire_async()
            grants.append(clock.now())
        return grants

    grants = asyncio.run(run())
    assert grants == pytest.approx(ideal_schedule(25, limits.windows()), abs=1e-9)


def test_ledger_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "ledger.sqlite"
    limiter = SharedRateLimiter(path, RateLimits(), FakeClock())
    assert limiter.try_acquire() == 0.0
    assert path.exists() and limiter.ledger_path == path
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# -- real threads ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "per_thread"),
    [
        # Upstox limits at 1/50 time: 640 requests cross the per-second and per-minute windows.
        (RateLimits(time_scale=0.02), 80),
        # Tiny limits at 1/1000 time: 48 requests cross all three windows in ~2 s.
        (
            RateLimits(
                per_second=5,
                per_minute=20,
                per_30_minutes=40,
                time_scale=0.001,
                latency_allowance_s=0.0,
            ),
            6,
        ),
    ],
    ids=["upstox-scaled", "all-three-windows"],
)
def test_threads_hammering_one_ledger_never_exceed_a_window(
    backend: Backend, limits: RateLimits, per_thread: int
) -> None:
    clock = RecordingClock()
    shared = backend.limiter(limits, clock)
    n_threads = 8
    barrier = threading.Barrier(n_threads)
    errors: list[BaseException] = []
    grants: list[float] = []

    def work(i: int) -> None:
        try:
            # Half the threads share one object (one connection), half bring their own.
            lim = shared if i % 2 else backend.limiter(limits, clock)
            barrier.wait(timeout=10)
            mine = [acquire_recording(lim, clock) for _ in range(per_thread)]
            grants.extend(mine)
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not errors
    assert not any(th.is_alive() for th in threads)

    grants.sort()
    assert len(grants) == n_threads * per_thread
    # The ledger holds exactly the grants of the last (longest) window.
    kept = backend.times()
    assert kept == grants[len(grants) - len(kept) :]
    assert_windows_respected(grants, limits.windows(), tol=1e-7)
    assert_windows_respected(grants, limits.server_windows(), tol=0.0)


def test_async_tasks_on_the_real_clock_never_exceed_a_window(backend: Backend) -> None:
    limits = RateLimits(per_second=10, per_minute=25, per_30_minutes=100, time_scale=0.01)
    # No clock given: the back end's own (the database server's, for PostgreSQL).
    limiter = SharedRateLimiter(backend.ledger(), limits)

    async def run() -> None:
        await asyncio.gather(*(limiter.acquire_async() for _ in range(40)))

    asyncio.run(run())
    times = backend.times()
    assert len(times) == 40
    assert_windows_respected(times, limits.windows(), tol=1e-7)


def test_concurrent_first_time_creation_is_safe(backend: Backend) -> None:
    n = 8
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait(timeout=10)
            # Every thread opens the brand-new ledger (and creates its tables) at once.
            assert SharedRateLimiter(backend.ledger("new"), RateLimits()).try_acquire() == 0.0
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    assert not errors
    assert len(backend.times("new")) == n


def test_database_locked_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A busy timeout far shorter than the outside lock forces "database is locked" errors.
    monkeypatch.setattr(ledger_sqlite, "_BUSY_TIMEOUT_S", 0.01)
    path = tmp_path / "ledger.sqlite"
    limiter = SharedRateLimiter(path, RateLimits())
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, lambda: blocker.execute("ROLLBACK"))
    release.start()
    try:
        started = time.monotonic()
        assert limiter.try_acquire() == 0.0
        assert time.monotonic() - started >= 0.25
    finally:
        release.join()
        blocker.close()
    assert len(Backend("sqlite", str(tmp_path)).times()) == 1


# -- real processes -------------------------------------------------------------------------


def _process_worker(
    backend: Backend,
    limits: RateLimits,
    n: int,
    out: str,
    barrier: multiprocessing.synchronize.Barrier,
) -> None:
    # SQLite: this machine's clock, recorded at each grant. PostgreSQL: the server's clock, as in
    # production (the grant times are then read from the ledger).
    clock = RecordingClock() if backend.kind == "sqlite" else None
    barrier.wait(timeout=30)
    # Every process opens the brand-new ledger at the same moment: schema creation races too.
    limiter = SharedRateLimiter(backend.ledger(clock=clock), limits, clock)
    if clock is not None:
        grants = [acquire_recording(limiter, clock) for _ in range(n)]
    else:
        grants = [limiter.acquire() for _ in range(n)]
    Path(out).write_text(json.dumps(grants))


def test_processes_sharing_one_ledger_never_exceed_a_window(
    backend: Backend, tmp_path: Path
) -> None:
    ctx = multiprocessing.get_context("spawn")
    limits = RateLimits(time_scale=0.01)
    n_procs, per_proc = 3, 250  # 750 requests: crosses the per-second and per-minute windows
    barrier = ctx.Barrier(n_procs)
    outs = [tmp_path / f"grants-{i}.json" for i in range(n_procs)]
    procs = [
        ctx.Process(target=_process_worker, args=(backend, limits, per_proc, str(out), barrier))
        for out in outs
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=90)
    for p in procs:
        if p.is_alive():
            p.kill()
    assert [p.exitcode for p in procs] == [0] * n_procs

    ledger = backend.times()  # nothing pruned yet: the scaled 30-minute window is 18 s
    assert len(ledger) == n_procs * per_proc
    if backend.kind == "sqlite":
        merged = sorted(t for out in outs for t in json.loads(out.read_text()))
        assert merged == ledger  # what the processes saw is what the ledger holds
    assert_windows_respected(ledger, limits.windows(), tol=1e-7)
    assert_windows_respected(ledger, limits.server_windows(), tol=0.0)
    # The per-minute window bound the run: 500 grants, then a wait of one (scaled) minute.
    assert ledger[500] - ledger[0] >= limits.windows()[1].seconds - 1e-7


def _forked_child(limiter: SharedRateLimiter, out: str) -> None:
    Path(out).write_text(json.dumps([limiter.try_acquire(), limiter.snapshot()["windows"][0]]))


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method"
)
def test_a_forked_child_opens_its_own_connection(backend: Backend, tmp_path: Path) -> None:
    limits = RateLimits(per_second=5, per_minute=100, per_30_minutes=100)
    limiter = SharedRateLimiter(backend.ledger(), limits)
    assert limiter.try_acquire() == 0.0  # the parent's connection is open and used
    out = tmp_path / "child.json"
    child = multiprocessing.get_context("fork").Process(
        target=_forked_child, args=(limiter, str(out))
    )
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0
    wait, window = json.loads(out.read_text())
    assert wait == 0.0 and window["count"] == 2
    assert limiter.try_acquire() == 0.0  # the parent's connection still works
    assert len(backend.times()) == 3


# -- Asking without waiting ---------------------------------------------------------------


def test_budget_wait_says_when_n_requests_fit_and_takes_nothing(backend: Backend) -> None:
    clock = FakeClock(1_000.0)
    limits = RateLimits(per_second=50, per_minute=500, per_30_minutes=8)
    limiter = backend.limiter(limits, clock)
    empty = limiter.budget_wait(5)
    assert (empty.wait_s, empty.reason) == (0.0, None)
    assert empty.describe() == "room for 5 requests now"
    grants = []
    for _ in range(6):
        assert limiter.try_acquire() == 0.0
        grants.append(clock.now())
        clock.sleep(10.0)
    # 6 of 8 used: room for 2 now; 3 need the oldest grant to leave the 30-minute window.
    assert limiter.budget_wait(2).wait_s == 0.0
    three = limiter.budget_wait(3)
    window = limits.windows()[2].seconds
    assert three.wait_s == pytest.approx(grants[0] + window - clock.now())
    assert three.until == pytest.approx(grants[0] + window)
    assert three.reason == "6 of 8 requests per 30 minutes used"
    assert "room for 3 more at" in three.describe() and "(in 29 min" in three.describe()
    assert len(backend.times()) == 6  # asking recorded nothing
    with pytest.raises(ValueError, match="between 1 and 8"):
        limiter.budget_wait(9)


def test_budget_wait_names_a_pause_that_ends_last(backend: Backend) -> None:
    clock = FakeClock(1_000.0)
    limiter = backend.limiter(RateLimits(), clock)
    limiter.pause(90.0, reason="429 from Upstox")
    wait = limiter.budget_wait(1)
    assert wait.wait_s == pytest.approx(90.0)
    assert wait.reason == "paused after 429 from Upstox"
    assert "(in 1 min 30 s)" in wait.describe()


def test_a_long_wait_is_logged_at_info_with_its_reason_once(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(1_000.0)
    limits = RateLimits(per_second=50, per_minute=500, per_30_minutes=3)
    limiter = backend.limiter(limits, clock)
    caplog.set_level("INFO", logger=limiter_module.__name__)
    for _ in range(5):
        limiter.acquire()
    waits = [r for r in caplog.records if "Waiting for Upstox rate budget" in r.getMessage()]
    # Two long waits happened; the second falls within LOG_EVERY_S of real time: one line.
    assert len(waits) == 1
    assert waits[0].levelname == "INFO"
    assert "3 of 3 requests per 30 minutes used" in waits[0].getMessage()


def test_format_duration() -> None:
    assert limiter_module.format_duration(0.5) == "0.5 s"
    assert limiter_module.format_duration(45) == "45 s"
    assert limiter_module.format_duration(1236.4) == "20 min 36 s"
    assert limiter_module.format_duration(4000) == "1 h 06 min"
