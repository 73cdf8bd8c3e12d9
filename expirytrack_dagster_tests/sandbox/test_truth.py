"""Ground truth: ``truth_candles`` equals what complete in-limit HTTP requests return, row for row.

The HTTP answers are parsed here by hand (not by ``upstox.models``) so the comparison checks the
sandbox's truth against its own wire format, independently of the client's parser.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest

import expirytrack_dagster.sandbox as sandbox_package
from expirytrack_dagster.sandbox import (
    TRUTH_COLUMNS,
    FaultConfig,
    Sandbox,
    SandboxConfig,
    UnknownInstrument,
    run_sandbox,
)
from expirytrack_dagster_tests.sandbox.conftest import (
    BASE,
    TINY,
    TINY_EXPIRY,
    TODAY,
    candle_path,
    http_client,
)

Row = tuple[str, datetime, float, float, float, float, int, int]


@pytest.fixture(scope="module")
def tiny_sandbox() -> Iterator[Sandbox]:
    """A sandbox with the small TINY underlying that serves any window in one request."""
    config = SandboxConfig(seed=7, today=TODAY, extra_profiles=(TINY,), max_span_days=3650)
    with run_sandbox(config) as sb:
        yield sb


def _wire_rows(key: str, body: dict) -> list[Row]:
    """A candle response's rows, parsed by hand, oldest first."""
    assert body["status"] == "success"
    rows = [
        (key, datetime.fromisoformat(ts), float(o), float(h), float(lo), float(c), int(v), int(oi))
        for ts, o, h, lo, c, v, oi in body["data"]["candles"]
    ]
    return rows[::-1]


def _truth_rows(frame: pd.DataFrame) -> list[Row]:
    return [
        (key, ts.to_pydatetime(), o, h, lo, c, int(v), int(oi))
        for key, ts, o, h, lo, c, v, oi in frame.itertuples(index=False)
    ]


def _listed_keys(c: httpx.Client, expiry: date) -> list[str]:
    keys = []
    for kind in ("option", "future"):
        response = c.get(
            f"{BASE}/{kind}/contract",
            params={"instrument_key": TINY.instrument_key, "expiry_date": str(expiry)},
        )
        keys += [item["instrument_key"] for item in response.json()["data"]]
    return sorted(keys)


def test_truth_equals_complete_http_answers(tiny_sandbox: Sandbox) -> None:
    sb = tiny_sandbox
    keys = sb.truth_contract_keys("TINY", TINY_EXPIRY)
    truth = sb.truth_candles("TINY", TINY_EXPIRY, "1minute")
    assert list(truth.columns) == list(TRUTH_COLUMNS)
    assert str(truth["timestamp"].dtype) == "datetime64[ns, Asia/Kolkata]"
    assert truth[["open", "high", "low", "close"]].dtypes.eq("float64").all()
    assert truth[["volume", "open_interest"]].dtypes.eq("int64").all()
    assert truth.equals(
        truth.sort_values(["expired_instrument_key", "timestamp"]).reset_index(drop=True)
    )
    wire: list[Row] = []
    with http_client(sb) as c:
        assert _listed_keys(c, TINY_EXPIRY) == keys and len(keys) == 23
        for key in keys:
            # One request covering the whole life (and more): complete, in the 3650-day limit.
            path = candle_path(key, "1minute", TINY_EXPIRY, TINY_EXPIRY - timedelta(days=120))
            wire += _wire_rows(key, c.get(path).json())
    assert len(wire) > 100_000
    assert _truth_rows(truth) == wire
    assert set(truth["expired_instrument_key"]) <= set(keys)


def test_truth_for_a_range_and_a_longer_interval(tiny_sandbox: Sandbox) -> None:
    sb = tiny_sandbox
    start, end = date(2025, 8, 11), date(2025, 8, 14)
    whole = sb.truth_candles("TINY", TINY_EXPIRY)
    part = sb.truth_candles("TINY", TINY_EXPIRY, "1minute", start, end)
    days = whole["timestamp"].dt.date
    expected = whole[(days >= start) & (days <= end)].reset_index(drop=True)
    pd.testing.assert_frame_equal(part, expected)

    day_bars = sb.truth_candles("TINY", TINY_EXPIRY, "day", start, end)
    future = sb.market.future_contracts("TINY", TINY_EXPIRY)[0]["instrument_key"]
    with http_client(sb) as c:
        wire = []
        for key in sorted(set(day_bars["expired_instrument_key"])):
            wire += _wire_rows(key, c.get(candle_path(key, "day", end, start)).json())
    assert _truth_rows(day_bars) == wire
    assert {ts.hour for ts in day_bars["timestamp"]} == {0}  # day candles stamp midnight IST
    assert future in set(day_bars["expired_instrument_key"])


def test_truth_ignores_span_limits_and_faults(tiny_sandbox: Sandbox) -> None:
    sb = tiny_sandbox
    before = sb.truth_candles("TINY", TINY_EXPIRY, "15minute")
    keys = frozenset(sb.truth_contract_keys("TINY", TINY_EXPIRY))
    sb.set_range(max_span_days=1, behaviour="error")
    sb.set_faults(FaultConfig(server_error=1.0, duplicate_keys=keys))
    try:
        again = sb.truth_candles("TINY", TINY_EXPIRY, "15minute")
    finally:
        sb.set_range(max_span_days=3650)
        sb.set_faults(FaultConfig())
    pd.testing.assert_frame_equal(before, again)


def test_truth_edges(tiny_sandbox: Sandbox) -> None:
    sb = tiny_sandbox
    early = sb.truth_candles("TINY", TINY_EXPIRY, "1minute", date(2025, 1, 1), date(2025, 1, 31))
    assert early.empty and list(early.columns) == list(TRUTH_COLUMNS)
    assert str(early["timestamp"].dtype) == "datetime64[ns, Asia/Kolkata]"
    with pytest.raises(UnknownInstrument):
        sb.truth_contract_keys("TINY", date(2025, 8, 27))  # not an expiry
    with pytest.raises(UnknownInstrument):
        sb.truth_candles("NOPE", TINY_EXPIRY)
    with pytest.raises(ValueError):
        sb.truth_candles("TINY", TINY_EXPIRY, "2minute")


def test_the_sandbox_shares_no_code_with_the_client() -> None:
    # The fake must not import the client's models or parsers, or a drift in them (a column
    # order, an interval name) would go unseen: both sides would drift together.
    package = Path(sandbox_package.__file__).parent
    imported: set[str] = set()
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    assert not {m for m in imported if m.startswith("expirytrack_dagster.upstox")}
    assert "expirytrack_dagster.sandbox.truth" in imported  # the scan does see the imports
