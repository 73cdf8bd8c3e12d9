"""Verified request spans: monotone facts, their persistence, the search, and judging an answer."""

from __future__ import annotations

import multiprocessing
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.upstox.spans import (
    SpanFacts,
    SpanMemory,
    answer_ends,
    candidate_spans,
    next_probe,
    settled_span,
)

HOST = "api.upstox.com"


def test_a_span_is_verified_only_when_both_ends_are_proven() -> None:
    facts = SpanFacts().with_proof("tail", 93)
    assert facts.verified is None  # the head could still have been cut
    facts = facts.with_proof("head", 60)
    assert facts.verified == 60
    assert facts.with_proof("head", 93).verified == 93


def test_a_failure_voids_what_it_contradicts_and_only_a_fresh_proof_erases_it() -> None:
    facts = SpanFacts(head_days=93, tail_days=93)
    cut = facts.with_failure("tail", 31)
    assert cut.tail_days is None and cut.head_days == 93  # the head proof still stands
    assert cut.verified is None and cut.bad_days == 31
    # A later answer that proves a shorter span does not erase the failure.
    assert cut.with_proof("tail", 20).bad_days == 31
    assert cut.with_proof("tail", 20).verified == 20
    # A fresh proof of both ends at the failing span does: the API's limit went up.
    grown = cut.with_proof("tail", 31)
    assert grown.bad_days is None and grown.verified == 31
    refused = SpanFacts(head_days=40, tail_days=40).with_failure("refused", 40)
    assert refused.head_days is None and refused.tail_days is None
    # The shortest failure is kept.
    assert refused.with_failure("refused", 60).bad_days == 40
    assert refused.with_failure("head", 20).bad_days == 20


def test_facts_rejects_unknown_sides() -> None:
    with pytest.raises(ValueError, match="side"):
        SpanFacts().with_proof("middle", 3)
    with pytest.raises(ValueError, match="kind"):
        SpanFacts().with_failure("slow", 3)


def test_memory_persists_and_is_shared(tmp_path: Path) -> None:
    memory = SpanMemory(tmp_path / "spans.sqlite")
    memory.record_proof(HOST, "1minute", "tail", 93)
    memory.record_proof(HOST, "1minute", "head", 93)
    memory.record_failure(HOST, "day", "refused", 400)
    again = SpanMemory(tmp_path / "spans.sqlite")
    assert again.facts(HOST, "1minute").verified == 93
    assert again.facts(HOST, "day") == SpanFacts(None, None, 400, "refused")
    assert again.facts("other.host", "1minute") == SpanFacts()


def _prove(path: str, days: int) -> None:
    SpanMemory(Path(path)).record_proof(HOST, "1minute", "head", days)


def test_concurrent_processes_never_lose_a_proof(tmp_path: Path) -> None:
    path = tmp_path / "spans.sqlite"
    SpanMemory(path)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        pool.starmap(_prove, [(str(path), d) for d in range(1, 41)])
    assert SpanMemory(path).facts(HOST, "1minute").head_days == 40


def test_candidates_are_the_spans_that_change_the_request_count() -> None:
    assert candidate_spans(93)[:5] == [93, 47, 31, 24, 19]
    assert candidate_spans(10) == [10, 5, 4, 3, 2, 1]
    assert candidate_spans(93, cap=30) == [24, 19, 16, 14, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]


def _search(limit: int, window: int = 93, served: bool = False) -> tuple[int, list[int]]:
    """Play the search against an API with ``limit``; return the settled span and the probes."""
    facts, hint, probes = SpanFacts(), None, []
    while (span := next_probe(window, facts, hint)) is not None:
        probes.append(span)
        if span <= limit:
            facts = facts.with_proof("head", span).with_proof("tail", span)
        else:
            facts = facts.with_failure("tail" if served else "refused", span)
            hint = limit - 2 if served else None  # a cut next to a weekend serves less
    return settled_span(window, facts), probes


@pytest.mark.parametrize("limit", [1, 5, 20, 24, 30, 31, 46, 47, 92, 93, 400])
def test_the_search_finds_the_fewest_requests_the_api_allows(limit: int) -> None:
    for served in (False, True):
        span, probes = _search(limit, served=served)
        fewest = -(-93 // min(limit, 93))
        assert span is not None and span <= limit
        assert -(-93 // span) == fewest, (limit, served, span, probes)
        assert len(probes) <= 8
    assert _search(400)[1] == [93]  # an API that serves the window is asked once


def test_a_verified_span_needs_no_probe() -> None:
    facts = SpanFacts(head_days=31, tail_days=31, bad_days=47, bad_kind="refused")
    assert next_probe(93, facts) is None
    assert settled_span(93, facts) == 31
    assert settled_span(60, facts) == 30  # two windows of 30, not 31 + 29
    # A longer window is learned upward from what is known, never assumed.
    assert next_probe(93, SpanFacts(head_days=40, tail_days=40)) == 93


def _frame(stamps: list[datetime]) -> pd.DataFrame:
    return pd.DataFrame({"timestamp": pd.to_datetime(stamps, utc=True).tz_convert(IST)})


def _at(day: date, hh: int, mm: int) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=IST)


def test_answer_ends_judges_first_and_last_session_bars() -> None:
    start, end = date(2025, 8, 1), date(2025, 8, 28)  # Fri .. Thu
    full = _frame([_at(start, 9, 15), _at(end, 15, 29)])
    ends = answer_ends(full, start, end, 1)
    assert ends.head_full and ends.tail_full
    late_open = answer_ends(_frame([_at(start, 9, 16), _at(end, 15, 29)]), start, end, 1)
    assert not late_open.head_full and late_open.tail_full
    early_close = answer_ends(_frame([_at(start, 9, 15), _at(end, 15, 20)]), start, end, 1)
    assert early_close.head_full and not early_close.tail_full
    assert early_close.served_from_start(start) == 28
    cut = answer_ends(
        _frame([_at(end - timedelta(days=9), 9, 15), _at(end, 15, 29)]), start, end, 1
    )
    assert not cut.head_full and cut.served_from_head(end) == 10
    five = answer_ends(_frame([_at(start, 9, 15), _at(end, 15, 25)]), start, end, 5)
    assert five.head_full and five.tail_full  # the last 5-minute bar starts at 15:25
    empty = answer_ends(_frame([]), start, end, 1)
    assert not empty.head_full and not empty.tail_full and empty.first_day is None
