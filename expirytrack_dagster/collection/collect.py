"""Collecting a partition's candles: settle a verified span, fetch only days not final, land each contract.

Plain async functions (no Dagster) so they are tested directly; the ``candles`` asset wraps them.

A run (1) reads what landed, (2) settles the request span (``collection.span_probe``), (3) turns
days that were asked at a span now verified into final days without a request, (4) fetches the
future first — its expiry day is checked on every run, so an API that starts cutting long ranges
is caught before the options are asked — then (5) the options. When the span turns out wrong
mid-run, what is in flight finishes, the span is settled again and only the days still not final
are asked for. Errors that doom the whole partition (a dead token, an open circuit, a
persistent 429, a missing plan) stop it at once: everything landed so far stays, and every day
the run did not answer is recorded ``failed`` with the reason and the fix (``record_stopped``),
so the fetch status says what was attempted and why it stopped.

A partition whose landing was pruned (``storage.landing``, ``ops.prune``) is refused before any
request (:class:`~expirytrack_dagster.storage.landing.PartitionPruned`): every day of it is final
and its candles live only in the database, so there is nothing to ask for, and staging it for a
publish would replace the stored candles with none.
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import to_thread
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pandas as pd

from expirytrack_dagster.calendar import IST, trading_days_between
from expirytrack_dagster.collection.answers import (
    WindowAnswer,
    clean_answer,
    failed_days,
    merge_days,
)
from expirytrack_dagster.collection.canaries import CanaryFinder
from expirytrack_dagster.collection.span_probe import SpanDecision, head_witnessed, settle_span
from expirytrack_dagster.quality.settings import interval_minutes
from expirytrack_dagster.storage.landing import (
    CandleLanding,
    DayRecord,
    LandedContract,
    PartitionPruned,
)
from expirytrack_dagster.upstox.client import UpstoxClient
from expirytrack_dagster.upstox.errors import (
    LOGIN_FIX,
    CircuitOpen,
    InvalidDateRange,
    PlanRequired,
    RateLimited,
    TokenExpired,
    UpstoxError,
)
from expirytrack_dagster.upstox.models import empty_candles
from expirytrack_dagster.upstox.spans import answer_ends
from expirytrack_dagster.upstox.windows import day_runs, span_days, split_windows

log = logging.getLogger(__name__)

FATAL_ERRORS: tuple[type[UpstoxError], ...] = (TokenExpired, PlanRequired, CircuitOpen, RateLimited)
"""Failures that would fail every remaining contract the same way: stop the partition."""

STOP_FIXES: dict[type[UpstoxError], str] = {
    TokenExpired: LOGIN_FIX,
    PlanRequired: "the expired-instruments API needs an Upstox Plus plan on this account",
    CircuitOpen: "Upstox kept failing (5xx answers or timeouts): wait a few minutes",
    RateLimited: (
        "Upstox kept answering 429: something else may be spending this token's budget; "
        "wait for the 30-minute window to free up"
    ),
}
"""What to do about each fatal error, before running the partition again."""

MAX_ROUNDS = 4
"""How often one run may settle the span again after the API answered against it."""

Progress = Callable[[int, int, str], None]
"""Called as ``progress(done, total, expired_instrument_key)`` after each contract lands."""


@dataclass(frozen=True)
class ContractToFetch:
    """One contract of the partition and its type (a future trades every session minute)."""

    expired_instrument_key: str
    instrument_type: str


@dataclass
class CollectionReport:
    """What one collection run did, for logs and asset metadata."""

    fetched: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    span_days: int | None = None
    span_verified: bool = False
    probe_requests: int = 0
    candle_requests: int = 0
    window_requests: int = 0
    minimum_requests: int | None = None
    events: list[str] = field(default_factory=list)
    duplicates_collapsed: int = 0
    outside_window: int = 0
    conflict_days: int = 0
    promoted_days: int = 0
    rechecked_contracts: int = 0

    def as_metadata(self) -> dict[str, object]:
        ratio = None
        if self.minimum_requests:
            ratio = round(self.candle_requests / self.minimum_requests, 3)
        return {
            "request_span_days": self.span_days,
            "request_span_verified": self.span_verified,
            "span_probe_requests": self.probe_requests,
            "candle_requests": self.candle_requests,
            "contract_window_requests": self.window_requests,
            "candle_requests_minimum": self.minimum_requests,
            "candle_requests_vs_minimum": ratio,
            "duplicates_collapsed": self.duplicates_collapsed,
            "candles_outside_window": self.outside_window,
            "conflicting_duplicate_days": self.conflict_days,
            "days_confirmed_without_request": self.promoted_days,
            "contracts_rechecked": self.rechecked_contracts,
            "span_events": len(self.events),
        }


def stop_reason(exc: UpstoxError) -> str:
    """'run stopped by TokenExpired: HTTP 401 …' and the fix: the error of the days it left."""
    fix = next((text for cls, text in STOP_FIXES.items() if isinstance(exc, cls)), None)
    reason = f"run stopped by {type(exc).__name__}: {exc}"
    return f"{reason} — {fix}, then run the partition again" if fix else reason


def record_stopped(
    landing: CandleLanding,
    partition_key: str,
    contract_keys: Sequence[str],
    days: Sequence[date],
    error: str,
    at: datetime,
    started: datetime,
) -> int:
    """Record ``failed`` with ``error`` for every day of these contracts the run did not answer.

    Written are days with no record, and days that failed before the run ``started`` (they were
    not asked again); a day that failed during the run keeps its own error, and final and
    unconfirmed days, and every landed candle, stay as they are. Returns the contract-days
    recorded.
    """
    recorded = 0
    for key in contract_keys:
        landed = landing.load(partition_key, key, days)
        records = dict(landed.days) if landed else {}
        left = [
            d
            for d in days
            if d not in records
            or (records[d].status == "failed" and records[d].fetched_at < started)
        ]
        if not left:
            continue
        for day in left:
            records[day] = DayRecord("failed", None, error, at)
        candles = landing.candles(landed) if landed else empty_candles()
        collapsed = landed.duplicates_collapsed if landed else 0
        landing.save(partition_key, key, candles, records, collapsed)
        recorded += len(left)
    return recorded


def pending_days(landed: LandedContract | None, days: Sequence[date]) -> list[date]:
    """Days of the window that are not final for this contract: to be fetched."""
    if landed is None:
        return list(days)
    return [d for d in days if d not in landed.days or not landed.days[d].final]


def _windows(pending: list[date], span: int) -> list[tuple[date, date]]:
    return [
        window
        for first, last in day_runs(pending)
        for window in split_windows(first, last, span, from_end=True)
    ]


class _Run:
    """One collection run's shared state (the landing, the span decision, the report)."""

    def __init__(
        self,
        client: UpstoxClient,
        landing: CandleLanding,
        partition_key: str,
        window: tuple[date, date],
        report: CollectionReport,
        canaries: CanaryFinder,
    ) -> None:
        self.client, self.landing, self.partition_key = client, landing, partition_key
        self.canaries = canaries
        self.window = window
        self.days = trading_days_between(*window)
        self.interval = landing.interval
        self.minutes = interval_minutes(landing.interval)
        self.report = report
        self.respan = asyncio.Event()  # the span proved wrong: stop asking, settle it again
        self.decision: SpanDecision | None = None
        self.span_cap: int | None = None

    def load(self, key: str) -> LandedContract | None:
        return self.landing.load(self.partition_key, key, self.days)

    def load_all(self, contracts: Sequence[ContractToFetch]) -> dict[str, LandedContract | None]:
        return {c.expired_instrument_key: self.load(c.expired_instrument_key) for c in contracts}

    def promote_all(
        self, landed: dict[str, LandedContract | None], pending: dict[str, list[date]]
    ) -> dict[str, LandedContract | None]:
        """``promote`` every contract with pending days; what each has landed now."""
        return {key: self.promote(key, item) for key, item in landed.items() if pending[key]}

    def promote(self, key: str, landed: LandedContract | None) -> LandedContract | None:
        """Make days asked at a span now verified final, without a request."""
        verified = self.decision.facts.verified if self.decision else None
        if landed is None or verified is None:
            return landed
        ready = {
            day: record
            for day, record in landed.days.items()
            if record.status == "unconfirmed"
            and record.span_days is not None
            and record.span_days <= verified
        }
        if not ready:
            return landed
        per_day = self.landing.candles_per_day(landed)
        days = dict(landed.days)
        for day, record in ready.items():
            status = "complete" if per_day.get(day) else "no_trades"
            days[day] = DayRecord(status, record.span_days, None, record.fetched_at)
        self.report.promoted_days += len(ready)
        return self.landing.save(
            self.partition_key,
            key,
            self.landing.candles(landed),
            days,
            landed.duplicates_collapsed,
        )

    async def fetch(self, contract: ContractToFetch, pending: list[date]) -> None:
        decision = self.decision
        assert decision is not None
        key = contract.expired_instrument_key
        now = datetime.now(UTC)
        answers, failures = [], {}
        for start, end in _windows(pending, decision.span_days):
            if self.respan.is_set():
                break
            cached = decision.answers.pop((key, start, end), None)
            try:
                if cached is None:
                    self.report.window_requests += 1
                    frame = await self.client.get_candles(key, self.interval, start, end)
                else:
                    frame = cached
            except InvalidDateRange:
                await self._wrong_span("refused", span_days(start, end), f"{key} {start}..{end}")
                break
            except FATAL_ERRORS:
                raise
            except UpstoxError as exc:
                failures.update(failed_days(start, end, str(exc), now))
                self.report.failed.setdefault(key, str(exc))
                log.warning("%s %s..%s failed: %s", key, start, end, exc)
                continue
            if contract.instrument_type == "FUT" and decision.verified:
                wrong = await self._future_contradicts(frame, start, end)
                if wrong is not None:
                    await self._wrong_span(wrong, span_days(start, end), f"{key} {start}..{end}")
                    break
            answer = clean_answer(
                key,
                frame,
                start,
                end,
                span_days=span_days(start, end),
                verified=decision.verified,
                fetched_at=now,
            )
            self.report.duplicates_collapsed += answer.duplicates
            self.report.outside_window += answer.outside_window
            self.report.conflict_days += len(answer.conflicts)
            for error in answer.conflicts.values():
                self.report.failed.setdefault(key, error)
                log.warning("%s", error)
            answers.append(answer)
        if not answers and not failures:
            return
        # Reading, merging and writing Parquet blocks: a worker thread, not the event loop.
        # Await first, then add: ``x += await ...`` reads x before the await and would write back
        # over what other contracts' coroutines added meanwhile (a lost update under load).
        dropped = await to_thread(self._land, key, answers, failures)
        self.report.duplicates_collapsed += dropped

    def _land(self, key: str, answers: list[WindowAnswer], failures: dict[date, DayRecord]) -> int:
        """Merge the answers into what landed for ``key`` and save; the duplicates dropped."""
        landed = self.load(key)
        old = self.landing.candles(landed) if landed else empty_candles()
        # The same zone object as the client's answers: pandas concatenates 'Asia/Kolkata' and
        # ZoneInfo('Asia/Kolkata') columns into plain objects, which the landing cannot save.
        old["timestamp"] = old["timestamp"].dt.tz_convert(IST)
        candles, days, dropped = merge_days(
            old, dict(landed.days) if landed else {}, answers, failures
        )
        earlier = landed.duplicates_collapsed if landed else 0
        collapsed = earlier + dropped + sum(a.duplicates for a in answers)
        self.landing.save(self.partition_key, key, candles, days, collapsed)
        return dropped

    async def _future_contradicts(self, frame: pd.DataFrame, start: date, end: date) -> str | None:
        """'tail' or 'head' when the future's answer shows the verified span no longer holds.

        The future trades until the close on expiry day, so that bar must be in the window
        ending on it. An answer starting after its window's first bar is either a future not
        listed yet or a cut head: the front-month future of that day settles which.
        """
        ends = answer_ends(frame, start, end, self.minutes)
        if end == self.window[1] and not ends.tail_full:
            return "tail"
        if ends.head_full or self.decision is None:
            return None
        kept = await head_witnessed(
            self.client, self.interval, self.canaries, start, end, self.decision
        )
        if kept is None:
            self.report.events.append(
                f"the first day of {start}..{end} could not be witnessed (no front-month future)"
            )
        return "head" if kept is False else None

    async def _wrong_span(self, kind: str, days: int, where: str) -> None:
        if self.respan.is_set():
            return  # another fetch reported it already
        self.respan.set()  # before the await: concurrent fetches stop asking at once
        spans, host = self.client.spans, self.client.host
        await to_thread(spans.record_failure, host, self.interval, kind, days)
        what = "refused" if kind == "refused" else f"came back without its {kind}"
        verified = self.decision is not None and self.decision.verified
        believed = "a span believed verified" if verified else "an unverified span"
        self.report.events.append(
            f"{days}-day window {what} at {believed} ({where}): settling again"
        )
        log.warning(self.report.events[-1])


async def collect_candles(
    client: UpstoxClient,
    landing: CandleLanding,
    partition_key: str,
    contracts: Sequence[ContractToFetch],
    from_date: date,
    to_date: date,
    *,
    underlying_key: str | None = None,
    force: bool = False,
    max_in_flight: int = 8,
    span_cap: int | None = None,
    progress: Progress | None = None,
) -> CollectionReport:
    """Land every day of every contract that is not final yet (all of them when ``force``).

    ``to_date`` is the expiry. ``underlying_key`` lets a partition without its own future
    borrow one to prove the request span; ``span_cap`` caps the days of one request. A pruned
    partition raises ``PartitionPruned`` before any request (``force`` included).
    """
    if await to_thread(landing.is_pruned, partition_key):
        raise PartitionPruned(partition_key, "collect it")
    report = CollectionReport()
    futures = [c for c in contracts if c.instrument_type == "FUT"]
    canaries = CanaryFinder(
        client,
        underlying_key or "",
        to_date,
        futures[0].expired_instrument_key if futures else None,
        can_list=underlying_key is not None,
    )
    run = _Run(client, landing, partition_key, (from_date, to_date), report, canaries)
    run.span_cap = span_cap
    requests_before = client.stats.requests["candles"]
    started = _now()
    try:
        first_pending = await _rounds(run, contracts, force, max_in_flight, progress)
    except FATAL_ERRORS as exc:
        keys = [c.expired_instrument_key for c in contracts]
        left = await to_thread(
            record_stopped,
            landing,
            partition_key,
            keys,
            run.days,
            stop_reason(exc),
            _now(),
            started,
        )
        log.warning("%s: stopped; %d contract-days recorded failed: %s", partition_key, left, exc)
        raise
    report.reused = [key for key, days in first_pending.items() if not days]
    report.candle_requests = client.stats.requests["candles"] - requests_before
    return report


def _now() -> datetime:
    return datetime.now(UTC)


async def _rounds(
    run: _Run,
    contracts: Sequence[ContractToFetch],
    force: bool,
    max_in_flight: int,
    progress: Progress | None,
) -> dict[str, list[date]]:
    """Settle the span and fetch until nothing is pending (or MAX_ROUNDS); the first pending."""
    client, report = run.client, run.report
    first_pending: dict[str, list[date]] = {}
    for round_number in range(MAX_ROUNDS):
        landed = await to_thread(run.load_all, contracts)
        pending = {
            key: (list(run.days) if force and round_number == 0 else pending_days(item, run.days))
            for key, item in landed.items()
        }
        if round_number == 0:
            first_pending = pending
            report.rechecked_contracts = sum(
                1 for key, item in landed.items() if item is not None and pending[key]
            )
        if not any(pending.values()):
            break
        run.respan.clear()
        probe_before = client.stats.total
        run.decision = await settle_span(
            client, run.interval, run.window, run.canaries, cap=run.span_cap
        )
        report.probe_requests += client.stats.total - probe_before
        report.events.extend(run.decision.events)
        report.span_days, report.span_verified = run.decision.span_days, run.decision.verified
        if not (force and round_number == 0):
            promoted = await to_thread(run.promote_all, landed, pending)
            pending.update({key: pending_days(item, run.days) for key, item in promoted.items()})
        todo = [c for c in contracts if pending[c.expired_instrument_key]]
        if round_number == 0 and run.decision.verified:
            report.minimum_requests = sum(
                len(_windows(pending[c.expired_instrument_key], run.decision.span_days))
                for c in todo
            )
        await _fetch_all(run, todo, pending, max_in_flight, progress)
        for contract in todo:
            if contract.expired_instrument_key not in report.fetched:
                report.fetched.append(contract.expired_instrument_key)
        if not run.respan.is_set():
            break
    return first_pending


async def _fetch_all(
    run: _Run,
    todo: list[ContractToFetch],
    pending: dict[str, list[date]],
    max_in_flight: int,
    progress: Progress | None,
) -> None:
    """The futures first (they prove the span still holds), then the options, concurrently."""
    gate = asyncio.Semaphore(max_in_flight)
    done = 0

    async def one(contract: ContractToFetch) -> None:
        nonlocal done
        async with gate:
            await run.fetch(contract, pending[contract.expired_instrument_key])
        done += 1
        if progress is not None:
            progress(done, len(todo), contract.expired_instrument_key)

    futures = [c for c in todo if c.instrument_type == "FUT"]
    options = [c for c in todo if c.instrument_type != "FUT"]
    for batch in (futures, options):
        if run.respan.is_set() or not batch:
            continue
        tasks = [asyncio.create_task(one(contract)) for contract in batch]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise


def fetch_status(
    landing: CandleLanding,
    partition_key: str,
    contract_keys: Sequence[str],
    from_date: date,
    to_date: date,
) -> tuple[pd.DataFrame, list[str]]:
    """Per-(contract, trading day) status from what landed, and the files to publish.

    ``complete`` / ``no_trades``: answered at a verified span, with / without candles;
    ``unconfirmed``: answered at a span not verified (not final: fetched again next run);
    ``failed``: the request failed, or the day was never fetched (``error`` says which).
    A pruned partition raises ``PartitionPruned``: it has no files to publish, and publishing
    none would wipe the candles that now live only in the database.
    """
    if landing.is_pruned(partition_key):
        raise PartitionPruned(partition_key, "stage its candles for publishing")
    days = trading_days_between(from_date, to_date)
    rows: list[tuple] = []
    files: list[str] = []
    for key in contract_keys:
        landed = landing.load(partition_key, key, days)
        records = landed.days if landed else {}
        per_day = landing.candles_per_day(landed) if landed else {}
        if landed is not None and landed.path.exists():
            files.append(str(landed.path))
        for day in days:
            record = records.get(day)
            if record is None:
                rows.append((key, day, "failed", per_day.get(day, 0), "never fetched", None))
            else:
                rows.append(
                    (key, day, record.status, per_day.get(day, 0), record.error, record.fetched_at)
                )
    status = pd.DataFrame(
        rows,
        columns=[
            "expired_instrument_key",
            "trading_date",
            "status",
            "candle_count",
            "error",
            "fetched_at",
        ],
    )
    status.insert(0, "partition_key", partition_key)
    status["candle_count"] = status["candle_count"].astype("int64")
    status["fetched_at"] = pd.to_datetime(status["fetched_at"], utc=True)
    return status, files
