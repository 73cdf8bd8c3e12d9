"""Verified request spans: what the candle endpoint is proven to answer in full, and how to find it.

Upstox does not document how many days one historical-candle request may span. An API may refuse
a long range (``UDAPI1148``), or answer status 200 with only its most recent days, or only its
earliest. Nothing about a span is therefore assumed; per (API host, interval) this module keeps
three facts, learned from contracts that trade every session minute (futures):

- ``head_days``: the longest span whose request came back with its first session day, from the
  session's open. It rules out "keeps the most recent days" truncation up to that span.
- ``tail_days``: the longest span whose request came back with its last session day, through the
  session's last bar. It rules out "keeps the earliest days" truncation up to that span.
- ``bad_days``: the shortest span that was refused, or came back cut at either end.

A span is **verified** when both ends are proven at (at least) that span and nothing failed at or
below it. The kept range of a truncating API depends on the requested dates, not the contract,
so two futures may prove the two ends (one listed before the window opened, one trading on its
last day). Answers from sparse contracts (options) prove nothing: a missing first day may simply
be a day without trades.

Facts are monotone: a failure at a span voids the proofs it contradicts; only a fresh proof of
both ends at or beyond a failing span erases that failure. They live in a small SQLite file that
every run, step and the sensor share.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd

from expirytrack_dagster.calendar import IST, session_for, trading_days_between

HINT_SLACK_DAYS = 4
"""A cut answer's first or last day may sit next to a weekend and holidays, so the API's real
limit can be a few days longer than what it served: spans up to this much longer are still tried."""

FAILURE_KINDS = ("refused", "head", "tail")

SPANS_FILE = "request_spans.sqlite"
"""The span memory's file name inside the state directory (``data/state`` by default)."""


@dataclass(frozen=True)
class SpanFacts:
    """What is known for one (host, interval); ``verified`` is the span safe to use."""

    head_days: int | None = None
    tail_days: int | None = None
    bad_days: int | None = None
    bad_kind: str | None = None

    @property
    def verified(self) -> int | None:
        """The longest span proven complete at both ends and below every failure, or None."""
        if self.head_days is None or self.tail_days is None:
            return None
        proven = min(self.head_days, self.tail_days)
        if self.bad_days is not None and proven >= self.bad_days:
            return None
        return proven

    def with_proof(self, side: str, days: int) -> SpanFacts:
        """These facts after a liquid contract proved ``side`` ('head' or 'tail') at ``days``."""
        head, tail = self.head_days, self.tail_days
        if side == "head":
            head = days if head is None else max(head, days)
        elif side == "tail":
            tail = days if tail is None else max(tail, days)
        else:
            raise ValueError(f"side must be 'head' or 'tail', not {side!r}")
        bad, kind = self.bad_days, self.bad_kind
        if bad is not None and head is not None and tail is not None and min(head, tail) >= bad:
            bad, kind = None, None  # both ends proven again at the failing span: the API grew
        return SpanFacts(head, tail, bad, kind)

    def with_failure(self, kind: str, days: int) -> SpanFacts:
        """These facts after a request of ``days`` was refused or came back cut (``kind``)."""
        if kind not in FAILURE_KINDS:
            raise ValueError(f"kind must be one of {FAILURE_KINDS}, not {kind!r}")
        head, tail = self.head_days, self.tail_days
        # What the failure contradicts is void: the API's behaviour changed since it was proven.
        if kind in ("refused", "head") and head is not None and head >= days:
            head = None
        if kind in ("refused", "tail") and tail is not None and tail >= days:
            tail = None
        if self.bad_days is None or days <= self.bad_days:
            return SpanFacts(head, tail, days, kind)
        return SpanFacts(head, tail, self.bad_days, self.bad_kind)


class SpanMemory:
    """Persisted :class:`SpanFacts` per (API host, interval), shared across processes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS request_spans ("
                " host TEXT NOT NULL, interval TEXT NOT NULL,"
                " head_days INTEGER, tail_days INTEGER, bad_days INTEGER, bad_kind TEXT,"
                " updated_at REAL NOT NULL, PRIMARY KEY (host, interval))"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    def facts(self, host: str, interval: str) -> SpanFacts:
        """What is known now (read fresh: another process may have learned something)."""
        with closing(self._connect()) as db:
            return self._read(db, host, interval)

    @staticmethod
    def _read(db: sqlite3.Connection, host: str, interval: str) -> SpanFacts:
        row = db.execute(
            "SELECT head_days, tail_days, bad_days, bad_kind FROM request_spans"
            " WHERE host = ? AND interval = ?",
            (host, interval),
        ).fetchone()
        return SpanFacts(*row) if row else SpanFacts()

    def record_proof(self, host: str, interval: str, side: str, days: int) -> SpanFacts:
        """A liquid contract's answer of span ``days`` was complete at ``side``."""
        return self._update(host, interval, lambda f: f.with_proof(side, days))

    def record_failure(self, host: str, interval: str, kind: str, days: int) -> SpanFacts:
        """A request of span ``days`` was refused or came back cut (``kind``)."""
        return self._update(host, interval, lambda f: f.with_failure(kind, days))

    def _update(
        self, host: str, interval: str, change: Callable[[SpanFacts], SpanFacts]
    ) -> SpanFacts:
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                facts = change(self._read(db, host, interval))
                db.execute(
                    "INSERT INTO request_spans"
                    " (host, interval, head_days, tail_days, bad_days, bad_kind, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (host, interval) DO UPDATE SET"
                    " head_days = excluded.head_days, tail_days = excluded.tail_days,"
                    " bad_days = excluded.bad_days, bad_kind = excluded.bad_kind,"
                    " updated_at = excluded.updated_at",
                    (
                        host,
                        interval,
                        facts.head_days,
                        facts.tail_days,
                        facts.bad_days,
                        facts.bad_kind,
                        time.time(),
                    ),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return facts


def candidate_spans(window_days: int, cap: int | None = None) -> list[int]:
    """The spans worth knowing for a window of ``window_days``, longest first.

    Only ``ceil(W / k)`` matters: it is the shortest span that fetches the window in ``k``
    requests, so searching these finds the fewest requests per contract the API allows.
    """
    spans = {-(-window_days // k) for k in range(1, window_days + 1)}
    if cap is not None:
        spans = {s for s in spans if s <= cap} or {cap}
    return sorted(spans, reverse=True)


def next_probe(
    window_days: int, facts: SpanFacts, hint: int | None = None, cap: int | None = None
) -> int | None:
    """The next span to probe for a window of ``window_days``, or None when nothing is left to learn.

    The whole window first (one request per contract if the API allows it); after a failure,
    about half of it; once one span is verified, the spans between it and the shortest failure.
    ``hint`` is how many days a cut answer really served: spans up to it are tried first.
    """
    spans = candidate_spans(window_days, cap)
    usable = settled_span(window_days, facts, cap)
    bad = facts.bad_days
    unknown = [s for s in spans if (usable is None or s > usable) and (bad is None or s < bad)]
    if hint is not None:
        unknown = [s for s in unknown if s <= hint + HINT_SLACK_DAYS]
        within = [s for s in unknown if s <= hint]
        if within:
            return within[0]
        return unknown[-1] if unknown else None
    if not unknown:
        return None
    if bad is None:
        return unknown[0]  # learn upward: the longest first
    if usable is None:
        half = -(-bad // 2)
        return next((s for s in unknown if s <= half), unknown[-1])
    return unknown[len(unknown) // 2]


def settled_span(window_days: int, facts: SpanFacts, cap: int | None = None) -> int | None:
    """The span to fetch with: the longest candidate within the verified span, or None."""
    verified = facts.verified
    if verified is None:
        return None
    if verified >= window_days and (cap is None or window_days <= cap):
        return window_days
    return max((s for s in candidate_spans(window_days, cap) if s <= verified), default=None)


@dataclass(frozen=True)
class AnswerEnds:
    """How one answer sits in its requested window (``None`` days: the answer was empty)."""

    first_day: date | None
    last_day: date | None
    head_full: bool  # first candle: the window's first session day, at its open
    tail_full: bool  # last candle: the window's last session day, at its last bar

    def served_from_head(self, end: date) -> int | None:
        """Days a head-cut answer served: its first day through the window's end."""
        return None if self.first_day is None else (end - self.first_day).days + 1

    def served_from_start(self, start: date) -> int | None:
        """Days a tail-cut answer served: the window's start through its last day."""
        return None if self.last_day is None else (self.last_day - start).days + 1


def _bar(day: date, interval_minutes: int | None, *, last: bool) -> datetime | None:
    """The first (or last) bar start of ``day``'s session; midnight IST for day candles."""
    session = session_for(day)
    if session is None:
        return None
    if interval_minutes is None:
        return datetime.combine(day, datetime.min.time(), IST)
    if not last:
        return session.open
    return session.open + timedelta(
        minutes=(session.minutes - 1) // interval_minutes * interval_minutes
    )


def answer_ends(
    candles: pd.DataFrame, start: date, end: date, interval_minutes: int | None
) -> AnswerEnds:
    """Whether ``candles`` (ascending, IST) reach both ends of the window ``start``..``end``.

    ``interval_minutes`` is the bar length (None for day candles, stamped at midnight IST).
    """
    days = trading_days_between(start, end)
    if candles.empty or not days:
        return AnswerEnds(None, None, False, False)
    first = candles["timestamp"].iloc[0].to_pydatetime().astimezone(IST)
    last = candles["timestamp"].iloc[-1].to_pydatetime().astimezone(IST)
    head_bar = _bar(days[0], interval_minutes, last=False)
    tail_bar = _bar(days[-1], interval_minutes, last=True)
    return AnswerEnds(
        first_day=first.date(),
        last_day=last.date(),
        head_full=head_bar is not None and first <= head_bar and first.date() == days[0],
        tail_full=tail_bar is not None and last >= tail_bar and last.date() == days[-1],
    )
