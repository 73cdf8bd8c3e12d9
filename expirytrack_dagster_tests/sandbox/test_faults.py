"""Injected faults over real HTTP: each kind, corruption kinds, targeting, counting, determinism."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date, datetime, timedelta

import httpx
import pytest

from expirytrack_dagster.calendar import is_trading_day, session_for
from expirytrack_dagster.sandbox import FaultConfig, Sandbox
from expirytrack_dagster.upstox.errors import MalformedResponse
from expirytrack_dagster.upstox.models import parse_candles
from expirytrack_dagster_tests.sandbox.conftest import (
    BASE,
    NIFTY,
    candle_path,
    http_client,
    monthly_and_weekly,
)

SandboxFactory = Callable[..., AbstractContextManager[Sandbox]]


def _expiries(c: httpx.Client) -> httpx.Response:
    return c.get(f"{BASE}/expiries", params={"instrument_key": NIFTY})


def _future_window(sb: Sandbox) -> tuple[str, str]:
    monthly, _ = monthly_and_weekly(sb)
    key = sb.market.future_contracts(NIFTY, monthly)[0]["instrument_key"]
    return key, candle_path(key, "1minute", monthly, monthly - timedelta(days=9))


def test_server_errors(fresh_sandbox: SandboxFactory) -> None:
    with fresh_sandbox(faults=FaultConfig(server_error=1.0)) as sb, http_client(sb) as c:
        responses = [_expiries(c) for _ in range(12)]
        stats = sb.stats()
    assert {r.status_code for r in responses} == {500, 503}
    for r in responses:
        error = r.json()["errors"][0]
        assert error["errorCode"] == error["error_code"] == "UDAPI100500"
        assert r.headers["content-type"] == "application/json"
    assert stats["faults"] == {"server_error": 12}


def test_slow_answers(fresh_sandbox: SandboxFactory) -> None:
    with fresh_sandbox(faults=FaultConfig(slow=1.0, slow_seconds=0.3)) as sb, http_client(sb) as c:
        started = time.monotonic()
        response = _expiries(c)
        elapsed = time.monotonic() - started
    assert response.status_code == 200 and elapsed >= 0.3  # held back, then answered


@pytest.mark.parametrize("http2", [True, False])
def test_dropped_requests_raise_transport_errors(
    fresh_sandbox: SandboxFactory, http2: bool
) -> None:
    with (
        fresh_sandbox(faults=FaultConfig(drop=1.0, max_count=1)) as sb,
        http_client(sb, http2=http2, timeout=60.0) as c,
    ):
        started = time.monotonic()
        with pytest.raises(httpx.TransportError):
            _expiries(c)
        # Well inside the client's 60 s timeout: the drop ended the request, not the timeout
        # (the margin is wide so a loaded machine cannot fail it).
        assert time.monotonic() - started < 30.0
        after = _expiries(c)  # the client recovers (new stream or new connection)
        stats = sb.stats()
    assert after.status_code == 200
    assert after.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    assert stats["dropped"] == 1 and stats["faults"] == {"drop": 1}


def test_malformed_bodies(fresh_sandbox: SandboxFactory) -> None:
    with fresh_sandbox(faults=FaultConfig(malformed=1.0)) as sb, http_client(sb) as c:
        expiries = _expiries(c)
        _, path = _future_window(sb)
        candles = c.get(path)
    for response in (expiries, candles):
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        with pytest.raises(json.JSONDecodeError):
            response.json()
    with pytest.raises((json.JSONDecodeError, MalformedResponse)):
        parse_candles(json.loads(candles.text)["data"])


def _corrupted(fresh_sandbox: SandboxFactory, kind: str) -> tuple[list[list], list[list]]:
    faults = FaultConfig(corrupt_candles=1.0, corruption_kinds=(kind,), seed=5)
    with fresh_sandbox(faults=faults) as sb, http_client(sb) as c:
        _key, path = _future_window(sb)
        bad = c.get(path).json()["data"]["candles"]
        sb.set_faults(FaultConfig())
        good = c.get(path).json()["data"]["candles"]
        assert sb.stats()["faults"] == {"corrupt_candles": 1}
    return good, bad


def test_corruption_skips_empty_answers(fresh_sandbox: SandboxFactory) -> None:
    faults = FaultConfig(corrupt_candles=1.0, corruption_kinds=("duplicate",), max_count=1)
    with fresh_sandbox(faults=faults) as sb, http_client(sb) as c:
        key, path = _future_window(sb)
        # Before the contract was listed: nothing traded, nothing to corrupt, nothing counted.
        empty = c.get(candle_path(key, "day", "2025-04-10", "2025-04-01")).json()["data"]
        assert empty == {"candles": []} and sb.stats()["faults"] == {}
        bad = c.get(path).json()["data"]["candles"]  # the one allowed fault is still there
        assert len(bad) == len({r[0] for r in bad}) + 1


def test_corruption_ohlc(fresh_sandbox: SandboxFactory) -> None:
    good, bad = _corrupted(fresh_sandbox, "ohlc")
    assert len(bad) == len(good) and bad != good
    assert any(h < lo for _, _, h, lo, *_ in bad)
    assert any(min(row[1:5]) < 0 for row in bad)
    assert not any(h < lo or min(o, h, lo, c) <= 0 for _, o, h, lo, c, *_ in good)


def test_corruption_duplicate(fresh_sandbox: SandboxFactory) -> None:
    good, bad = _corrupted(fresh_sandbox, "duplicate")
    assert len(bad) == len(good) + 1
    stamps = [r[0] for r in bad]
    assert len(set(stamps)) == len(good)
    twin = next(i for i in range(len(bad) - 1) if bad[i] == bad[i + 1])
    assert bad[:twin] + bad[twin + 1 :] == good


def test_corruption_out_of_session(fresh_sandbox: SandboxFactory) -> None:
    good, bad = _corrupted(fresh_sandbox, "out_of_session")
    extra = [r for r in bad if r not in good]
    assert len(bad) == len(good) + 1 and len(extra) == 1
    moment = datetime.fromisoformat(extra[0][0])
    session = session_for(moment.date())
    assert session is not None and not session.open <= moment < session.close
    assert extra[0][0].endswith("T08:00:00+05:30")
    assert [r[0] for r in bad] == sorted((r[0] for r in bad), reverse=True)


def test_corruption_missing_day(fresh_sandbox: SandboxFactory) -> None:
    good, bad = _corrupted(fresh_sandbox, "missing_day")
    good_days = sorted({r[0][:10] for r in good})
    bad_days = sorted({r[0][:10] for r in bad})
    (missing,) = set(good_days) - set(bad_days)
    assert is_trading_day(date.fromisoformat(missing))
    assert good_days[0] < missing < good_days[-1]  # a gap, not a shorter range
    assert len(bad) == len(good) - 375


def test_faults_only_on_chosen_paths_and_counted(fresh_sandbox: SandboxFactory) -> None:
    faults = FaultConfig(server_error=1.0, only_paths=("historical-candle",), max_count=2)
    with fresh_sandbox(faults=faults) as sb, http_client(sb) as c:
        _, path = _future_window(sb)
        assert _expiries(c).status_code == 200
        assert [c.get(path).status_code >= 500 for _ in range(4)] == [True, True, False, False]
        assert _expiries(c).status_code == 200


def test_fail_keys_always_fail(fresh_sandbox: SandboxFactory) -> None:
    with fresh_sandbox() as sb, http_client(sb) as c:
        key, path = _future_window(sb)
        option = sb.market.option_contracts(NIFTY, monthly_and_weekly(sb)[0])[50]["instrument_key"]
        sb.set_faults(FaultConfig(fail_keys=frozenset({key}), max_count=0))
        raw_path = path.replace("%7C", "|")
        assert [c.get(p).status_code for p in (path, raw_path, path)] == [500, 500, 500]
        assert c.get(path).json()["errors"][0]["errorCode"] == "UDAPI100500"
        other = c.get(candle_path(option, "day", "2025-08-28", "2025-08-01"))
        assert other.status_code == 200
        assert sb.stats()["faults"] == {"fail_key": 4}


def test_faults_are_deterministic_for_a_seed(fresh_sandbox: SandboxFactory) -> None:
    def run(seed: int) -> list[int]:
        faults = FaultConfig(server_error=0.3, malformed=0.2, seed=seed)
        with fresh_sandbox(faults=faults) as sb, http_client(sb) as c:
            return [_expiries(c).status_code for _ in range(25)]

    first, again, other = run(3), run(3), run(4)
    assert first == again and first != other
    assert {200} < set(first)


def test_faults_switch_at_runtime(fresh_sandbox: SandboxFactory) -> None:
    with fresh_sandbox() as sb, http_client(sb) as c:
        assert _expiries(c).status_code == 200
        sb.set_faults(FaultConfig(server_error=1.0))
        assert _expiries(c).status_code >= 500
        sb.set_faults(FaultConfig())
        assert _expiries(c).status_code == 200


def test_fault_config_validates() -> None:
    with pytest.raises(ValueError):
        FaultConfig(drop=1.5)
    with pytest.raises(ValueError):
        FaultConfig(corruption_kinds=("nonsense",))
    assert FaultConfig(only_paths="historical-candle").only_paths == ("historical-candle",)


def _ohlc_valid(row: list) -> bool:
    _, o, h, lo, c, v, oi = row
    return lo <= min(o, c) <= max(o, c) <= h and v > 0 and oi >= 0


def test_duplicate_keys_repeat_one_candle_identically(fresh_sandbox: SandboxFactory) -> None:
    with fresh_sandbox() as sb, http_client(sb) as c:
        key, path = _future_window(sb)
        monthly, _ = monthly_and_weekly(sb)
        option = sb.market.option_contracts(NIFTY, monthly)[60]["instrument_key"]
        # Rates, seed and max_count do not matter: the defect is per key and deterministic.
        sb.set_faults(FaultConfig(duplicate_keys=key, max_count=0, seed=9))
        truth = sb.market.candle_rows(key, "1minute", monthly - timedelta(days=9), monthly)
        answers = [c.get(path).json()["data"]["candles"] for _ in range(3)]
        assert answers[0] == answers[1] == answers[2]
        rows = answers[0]
        assert len(rows) == len(truth) + 1
        assert rows[0] == rows[1] == truth[0]  # the newest candle, twice
        assert rows[1:] == truth
        other = candle_path(option, "1minute", monthly, monthly - timedelta(days=9))
        assert c.get(other).json()["data"]["candles"] == sb.market.candle_rows(
            option, "1minute", monthly - timedelta(days=9), monthly
        )
        assert sb.stats()["faults"] == {"duplicate_key": 3}


def test_conflict_keys_send_one_minute_twice_with_different_values(
    fresh_sandbox: SandboxFactory,
) -> None:
    with fresh_sandbox() as sb, http_client(sb) as c:
        key, path = _future_window(sb)
        monthly, _ = monthly_and_weekly(sb)
        sb.set_faults(FaultConfig(conflict_keys=frozenset({key}), duplicate_keys=frozenset({key})))
        assert sb.state.faults.config.active
        truth = sb.market.candle_rows(key, "1minute", monthly - timedelta(days=9), monthly)
        rows = c.get(path).json()["data"]["candles"]
        assert rows == c.get(path).json()["data"]["candles"]  # the same every time
        assert rows[0] == truth[0] and rows[1][0] == truth[0][0] and rows[1] != truth[0]
        assert _ohlc_valid(rows[1])  # a believable bar, caught only by its repeated minute
        assert [rows[0], *rows[2:]] == truth
        parsed = parse_candles({"candles": rows})
        assert parsed["timestamp"].duplicated().sum() == 1
        # Day candles of the same key conflict too; an empty answer stays empty.
        day = c.get(candle_path(key, "day", monthly, monthly - timedelta(days=9)))
        day_rows = day.json()["data"]["candles"]
        assert day_rows[0][0] == day_rows[1][0] and day_rows[0] != day_rows[1]
        before = c.get(candle_path(key, "1minute", "2024-01-10", "2024-01-01"))
        assert before.json()["data"]["candles"] == []
        assert sb.stats()["faults"] == {"conflict_key": 3}
