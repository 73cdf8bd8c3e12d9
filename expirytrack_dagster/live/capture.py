"""The capture loop: one session's option chains, polled once a minute, stored once each.

The capture minutes of a session are the ends of its 1-minute candles: 09:16 … 15:30 on a regular
day (375), the snapshot at 09:16 showing the market after the 09:15 candle. At each capture
minute every tracked (underlying, expiry) chain is requested at once; an answer is stored under
that minute only if it arrived within the minute, otherwise the minute stays missing for that
chain: missed minutes are never filled in or interpolated, only counted. A run started late or
restarted mid-session skips what is stored (the store's ``capture_log``) and the minutes already
past, and continues from the next minute.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pandas as pd

from expirytrack_dagster.calendar import Session, session_for
from expirytrack_dagster.instruments import Underlying
from expirytrack_dagster.live.clock import SessionClock
from expirytrack_dagster.live.store import SnapshotStore
from expirytrack_dagster.live.targets import DEFAULT_SELECTORS, tracked_expiries
from expirytrack_dagster.upstox.client import UpstoxClient
from expirytrack_dagster.upstox.errors import UpstoxError

log = logging.getLogger(__name__)
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Target:
    """One chain the capture polls: an underlying and one of its current expiries."""

    underlying: Underlying
    expiry: date


@dataclass
class CaptureReport:
    """What one capture run did, for the run's metadata."""

    session_day: date
    targets: list[str] = field(default_factory=list)
    minutes_expected: int = 0
    chains_stored: int = 0
    rows_stored: int = 0
    chains_already_stored: int = 0
    chains_missed: int = 0
    missed: list[str] = field(default_factory=list)  # "HH:MM SYMBOL EXPIRY: why"
    requests: int = 0

    def as_metadata(self) -> dict[str, object]:
        return {
            "session_day": self.session_day.isoformat(),
            "targets": self.targets,
            "minutes_expected": self.minutes_expected,
            "chains_stored": self.chains_stored,
            "rows_stored": self.rows_stored,
            "chains_already_stored": self.chains_already_stored,
            "chains_missed": self.chains_missed,
            "missed_sample": self.missed[:50],
            "api_requests": self.requests,
        }


def capture_minutes(session: Session) -> list[datetime]:
    """The session's capture minutes: the end of each of its 1-minute candles."""
    return [session.open + MINUTE * (k + 1) for k in range(session.minutes)]


async def resolve_targets(
    client: UpstoxClient, underlyings: Sequence[Underlying], selectors: Sequence[str]
) -> list[Target]:
    """The tracked expiries of every underlying (one contract-list request each)."""
    targets = []
    for underlying in underlyings:
        current = await client.get_current_expiries(underlying.instrument_key)
        for found in tracked_expiries(current, selectors):
            targets.append(Target(underlying, found.expiry))
    return targets


async def capture_session(
    client_factory: Callable[[], UpstoxClient],
    store: SnapshotStore,
    underlyings: Sequence[Underlying],
    *,
    selectors: Sequence[str] = DEFAULT_SELECTORS,
    clock: SessionClock | None = None,
    report: CaptureReport | None = None,
) -> CaptureReport:
    """Capture ``store.day``'s session until it closes; returns (and fills) the report.

    ``clock`` is the wall clock by default; a test passes the sandbox's time-scaled one.
    """
    clock = clock or SessionClock()
    report = report or CaptureReport(store.day)
    session = session_for(store.day)
    if session is None:
        return report
    minutes = capture_minutes(session)
    report.minutes_expected = len(minutes)
    async with client_factory() as client:
        targets = await resolve_targets(client, underlyings, selectors)
        report.targets = [f"{t.underlying.symbol} {t.expiry}" for t in targets]
        done = store.captured()
        try:
            for minute in minutes:
                await _capture_minute(client, store, targets, minute, done, clock, report)
        finally:
            report.requests = client.stats.total
    return report


async def _capture_minute(
    client: UpstoxClient,
    store: SnapshotStore,
    targets: Sequence[Target],
    minute: datetime,
    done: set[tuple[datetime, str, date]],
    clock: SessionClock,
    report: CaptureReport,
) -> None:
    todo = [t for t in targets if (minute, t.underlying.symbol, t.expiry) not in done]
    report.chains_already_stored += len(targets) - len(todo)
    if not todo:
        return
    if clock.now() >= minute + MINUTE:  # past before this run could ask: stays missing
        _missed(report, minute, todo, "not captured in its minute", quiet=True)
        return
    await clock.sleep_until(minute)
    answers = await asyncio.gather(
        *(
            client.get_option_chain(
                t.underlying.instrument_key,
                t.expiry,
                underlying_symbol=t.underlying.symbol,
                captured_at=minute,
            )
            for t in todo
        ),
        return_exceptions=True,
    )
    late = clock.now() >= minute + MINUTE
    frames: list[tuple[str, date, pd.DataFrame]] = []
    for target, answer in zip(todo, answers, strict=True):
        if isinstance(answer, UpstoxError):
            _missed(report, minute, [target], answer.message)
        elif isinstance(answer, BaseException):
            raise answer
        elif late:
            _missed(report, minute, [target], "answered after its minute")
        else:
            frames.append((target.underlying.symbol, target.expiry, answer))
    if frames:
        report.rows_stored += store.write_minute(frames, minute)
        report.chains_stored += len(frames)
        done.update((minute, symbol, expiry) for symbol, expiry, _ in frames)


def _missed(
    report: CaptureReport,
    minute: datetime,
    targets: Sequence[Target],
    why: str,
    *,
    quiet: bool = False,
) -> None:
    report.chains_missed += len(targets)
    for t in targets:
        report.missed.append(f"{minute:%H:%M} {t.underlying.symbol} {t.expiry}: {why}")
    # Minutes already past when a run starts are counted, not shouted about one by one.
    level = logging.DEBUG if quiet else logging.WARNING
    log.log(level, "live capture missed %s at %s: %s", len(targets), f"{minute:%H:%M}", why)
