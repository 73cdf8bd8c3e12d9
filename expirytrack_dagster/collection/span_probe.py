"""Settling the request span for a partition: probe with canary futures until a span is verified.

``settle_span`` asks :func:`upstox.spans.next_probe` which span to try, asks the tail-witness
future for a window of that span ending on its expiry day, and judges the answer:

- refused (``UDAPI1148``): the span fails;
- the expiry day missing or cut short: the API kept the earliest days — the span fails, and
  the days it did serve are the hint for the next try;
- the window's first day present from the open: both ends are proven in one request;
- otherwise the future may simply not have been listed yet, so the front-month future of the
  window's first day is asked for the same window: its first day present proves the head, and
  missing means the API kept only the most recent days.

Every outcome is written to the shared span memory. A complete probe answer is kept so the
same window is not asked for again when the partition's future is fetched.
"""

from __future__ import annotations

import logging
from asyncio import to_thread
from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd

from expirytrack_dagster.collection.canaries import Canary, CanaryFinder
from expirytrack_dagster.quality.settings import interval_minutes
from expirytrack_dagster.upstox.client import UpstoxClient
from expirytrack_dagster.upstox.errors import InvalidDateRange
from expirytrack_dagster.upstox.spans import (
    SpanFacts,
    answer_ends,
    candidate_spans,
    next_probe,
    settled_span,
)
from expirytrack_dagster.upstox.windows import span_days

log = logging.getLogger(__name__)

MAX_PROBES = 12
"""Probe rounds one settlement may take (a binary search over at most ~100 spans needs 7)."""


@dataclass
class SpanDecision:
    """The span a partition fetches with, whether it is verified, and what finding it cost."""

    span_days: int
    verified: bool
    facts: SpanFacts
    probe_requests: int = 0
    events: list[str] = field(default_factory=list)
    answers: dict[tuple[str, date, date], pd.DataFrame] = field(default_factory=dict)
    witnessed: dict[tuple[date, date], bool] = field(default_factory=dict)


@dataclass
class _Probe:
    ok: bool
    hint: int | None = None
    unprovable: bool = False


async def settle_span(
    client: UpstoxClient,
    interval: str,
    window: tuple[date, date],
    canaries: CanaryFinder,
    *,
    cap: int | None = None,
) -> SpanDecision:
    """Find (or recall) the longest verified span for ``window``; probe only what is unknown."""
    memory, host = client.spans, client.host
    window_days = span_days(*window)
    requests_before = client.stats.total
    facts = await to_thread(memory.facts, host, interval)
    decision = SpanDecision(window_days, False, facts)
    hint: int | None = None
    for _ in range(MAX_PROBES):
        facts = await to_thread(memory.facts, host, interval)
        span = next_probe(window_days, facts, hint, cap)
        if span is None:
            break
        probe = await _probe(client, interval, span, canaries, decision)
        if probe.unprovable:
            break
        if not probe.ok:
            hint = probe.hint  # what a cut answer served stays the estimate until the next cut
    facts = await to_thread(memory.facts, host, interval)
    decision.facts = facts
    decision.probe_requests = client.stats.total - requests_before
    settled = settled_span(window_days, facts, cap)
    if settled is not None:
        decision.span_days, decision.verified = settled, True
        return decision
    # Nothing verified: fetch at the longest span not known to fail; every day stays unconfirmed.
    spans = candidate_spans(window_days, cap)
    below_bad = [s for s in spans if facts.bad_days is None or s < facts.bad_days]
    guess = next_probe(window_days, facts, hint, cap)
    decision.span_days = guess or (below_bad[0] if below_bad else 1)
    decision.events.append(
        f"no request span could be verified for {interval}; fetching at "
        f"{decision.span_days} days, and every day stays unconfirmed until one is"
    )
    return decision


async def _probe(
    client: UpstoxClient,
    interval: str,
    span: int,
    canaries: CanaryFinder,
    decision: SpanDecision,
) -> _Probe:
    memory, host = client.spans, client.host
    tail = await canaries.tail_witness()
    if tail is None:
        decision.events.append("no expired future of this underlying to prove a request span with")
        return _Probe(ok=False, unprovable=True)
    start = tail.expiry - timedelta(days=span - 1)
    answer = await _ask(client, interval, tail, start, span, decision)
    if answer is None:
        return _Probe(ok=False)
    minutes = interval_minutes(interval)
    ends = answer_ends(answer, start, tail.expiry, minutes)
    if not ends.tail_full:
        await to_thread(memory.record_failure, host, interval, "tail", span)
        served = ends.served_from_start(start)
        decision.events.append(
            f"{span}-day {interval} window came back without its last day "
            f"({tail.expired_instrument_key}): the API kept only the earliest "
            f"{served if served else 'no'} days"
        )
        return _Probe(ok=False, hint=served)
    await to_thread(memory.record_proof, host, interval, "tail", span)
    if ends.head_full:
        await to_thread(memory.record_proof, host, interval, "head", span)
        decision.answers[(tail.expired_instrument_key, start, tail.expiry)] = answer
        return _Probe(ok=True)
    served = ends.served_from_head(tail.expiry)
    witnessed = await head_witnessed(client, interval, canaries, start, tail.expiry, decision)
    if witnessed is None:
        decision.events.append(f"no front-month future on {start} to prove a {span}-day head")
        return _Probe(ok=False, unprovable=True)
    if witnessed:
        await to_thread(memory.record_proof, host, interval, "head", span)
        decision.answers[(tail.expired_instrument_key, start, tail.expiry)] = answer
        return _Probe(ok=True)
    await to_thread(memory.record_failure, host, interval, "head", span)
    decision.events.append(
        f"{span}-day {interval} window came back without its first day: the API kept only "
        f"the most recent {served if served else 'no'} days"
    )
    return _Probe(ok=False, hint=served)


async def head_witnessed(
    client: UpstoxClient,
    interval: str,
    canaries: CanaryFinder,
    start: date,
    end: date,
    decision: SpanDecision,
) -> bool | None:
    """Did the window ``start``..``end`` keep its first day? Asks the front-month future of ``start``.

    A future whose answer begins after its window's first day may not have been listed yet; the
    future that was the front month that day certainly traded, so its answer for the same
    window settles it. None: no such future could be found. Witnessed windows are remembered.
    """
    if (start, end) in decision.witnessed:
        return decision.witnessed[(start, end)]
    front = await canaries.front_month(start)
    if front is None:
        return None
    span = (end - start).days + 1
    witness = await _ask(client, interval, front, start, span, decision)
    kept = (
        witness is not None
        and answer_ends(witness, start, end, interval_minutes(interval)).head_full
    )
    decision.witnessed[(start, end)] = kept
    return kept


async def _ask(
    client: UpstoxClient,
    interval: str,
    canary: Canary,
    start: date,
    span: int,
    decision: SpanDecision,
) -> pd.DataFrame | None:
    end = start + timedelta(days=span - 1)
    try:
        return await client.get_candles(canary.expired_instrument_key, interval, start, end)
    except InvalidDateRange:
        await to_thread(client.spans.record_failure, client.host, interval, "refused", span)
        decision.events.append(f"{span}-day {interval} window refused (UDAPI1148)")
        log.info("%s-day %s window refused", span, interval)
        return None
