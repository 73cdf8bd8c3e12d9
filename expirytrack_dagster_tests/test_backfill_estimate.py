"""The backfill estimate counts requests at the span verified for this API, when there is one."""

from __future__ import annotations

from pathlib import Path

from expirytrack_dagster.cli import _verified_span
from expirytrack_dagster.resources import UpstoxResource
from expirytrack_dagster.upstox.spans import SpanMemory


def test_the_estimate_uses_the_verified_span_of_this_host(tmp_path: Path) -> None:
    upstox = UpstoxResource(source="upstox", state_dir=str(tmp_path))
    assert _verified_span(upstox, "1minute") is None  # nothing learned yet
    memory = SpanMemory(tmp_path / "request_spans.sqlite")
    memory.record_proof("api.upstox.com", "1minute", "head", 31)
    assert _verified_span(upstox, "1minute") is None  # one end proves nothing
    memory.record_proof("api.upstox.com", "1minute", "tail", 31)
    assert _verified_span(upstox, "1minute") == 31
    memory.record_proof("127.0.0.1:9999", "day", "tail", 365)
    assert _verified_span(upstox, "day") is None  # another host's facts are not this API's
