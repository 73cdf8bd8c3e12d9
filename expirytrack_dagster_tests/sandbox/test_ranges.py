"""Span limits and range behaviours over real HTTP: refuse, keep the most recent or the earliest
days, allow everything, and changing them on a running sandbox."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date, timedelta

import httpx
import pytest

from expirytrack_dagster.sandbox import (
    ANY_SPAN_DAYS,
    DEFAULT_MAX_SPAN_DAYS,
    RangePolicy,
    Sandbox,
    SandboxConfig,
)
from expirytrack_dagster.sandbox.ranges import INTRADAY_INTERVALS, RangeRefused
from expirytrack_dagster_tests.sandbox.conftest import (
    NIFTY,
    candle_path,
    http_client,
    monthly_and_weekly,
)

SandboxFactory = Callable[..., AbstractContextManager[Sandbox]]


def _future(sb: Sandbox) -> tuple[str, date]:
    monthly, _ = monthly_and_weekly(sb)
    return sb.market.future_contracts(NIFTY, monthly)[0]["instrument_key"], monthly


def _days(rows: list[list]) -> list[str]:
    return sorted({row[0][:10] for row in rows})


def _get(
    c: httpx.Client, key: str, interval: str, to_date: date, from_date: date
) -> httpx.Response:
    return c.get(candle_path(key, interval, to_date, from_date))


def test_error_refuses_past_the_limit(fresh_sandbox: SandboxFactory) -> None:
    with fresh_sandbox(max_span_days=20) as sb, http_client(sb) as c:
        key, monthly = _future(sb)
        inside = _get(c, key, "1minute", monthly, monthly - timedelta(days=19))
        assert inside.status_code == 200
        assert inside.json()["data"]["candles"] == sb.market.candle_rows(
            key, "1minute", monthly - timedelta(days=19), monthly
        )
        for interval in INTRADAY_INTERVALS:
            refused = _get(c, key, interval, monthly, monthly - timedelta(days=20))
            assert refused.status_code == 400
            assert refused.json()["errors"][0]["errorCode"] == "UDAPI1148"
        # One number sets the intraday intervals only; 30minute and day keep 366 days.
        assert _get(c, key, "day", monthly, monthly - timedelta(days=60)).status_code == 200


def test_keep_recent_serves_the_last_days(fresh_sandbox: SandboxFactory) -> None:
    with (
        fresh_sandbox(max_span_days={"1minute": 20}, range_behaviour="keep_recent") as sb,
        http_client(sb) as c,
    ):
        key, monthly = _future(sb)
        start = monthly - timedelta(days=60)
        response = _get(c, key, "1minute", monthly, start)
        assert response.status_code == 200
        rows = response.json()["data"]["candles"]
        kept_from = monthly - timedelta(days=19)
        assert rows == sb.market.candle_rows(key, "1minute", kept_from, monthly)
        assert _days(rows)[0] >= str(kept_from) and _days(rows)[-1] == str(monthly)
        # The old name still means the same.
        assert SandboxConfig(range_behaviour="truncate").range_behaviour == "keep_recent"


def test_keep_earliest_serves_the_first_days(fresh_sandbox: SandboxFactory) -> None:
    with (
        fresh_sandbox(max_span_days={"1minute": 20}, range_behaviour="keep_earliest") as sb,
        http_client(sb) as c,
    ):
        key, monthly = _future(sb)
        start = monthly - timedelta(days=60)
        rows = _get(c, key, "1minute", monthly, start).json()["data"]["candles"]
        kept_to = start + timedelta(days=19)
        assert rows == sb.market.candle_rows(key, "1minute", start, kept_to)
        assert _days(rows)[0] >= str(start) and _days(rows)[-1] <= str(kept_to)
        assert len(_days(rows)) >= 12  # about 14 trading days in 20 calendar days
        # 5minute keeps its default 31 days.
        five = _get(c, key, "5minute", monthly, monthly - timedelta(days=30))
        assert _days(five.json()["data"]["candles"])[-1] == str(monthly)


@pytest.mark.parametrize("limit", [{"1minute": 3650}, ANY_SPAN_DAYS])
def test_a_large_limit_allows_the_whole_life(
    fresh_sandbox: SandboxFactory, limit: dict[str, int] | int
) -> None:
    with fresh_sandbox(max_span_days=limit) as sb, http_client(sb) as c:
        key, monthly = _future(sb)
        listing = sb.market.contract(key).listing
        assert (monthly - listing).days > 80  # far longer than the default 31 days
        rows = _get(c, key, "1minute", monthly, listing - timedelta(days=400)).json()["data"][
            "candles"
        ]
        assert rows == sb.market.candle_rows(key, "1minute", listing, monthly)
        assert _days(rows)[0] == str(listing) and _days(rows)[-1] == str(monthly)
        assert len(rows) == 375 * len(_days(rows))  # a future trades every minute


def test_set_range_at_runtime(fresh_sandbox: SandboxFactory) -> None:
    with fresh_sandbox(max_span_days=3650) as sb, http_client(sb) as c:
        key, monthly = _future(sb)
        start = monthly - timedelta(days=40)
        whole = sb.market.candle_rows(key, "1minute", start, monthly)
        assert _get(c, key, "1minute", monthly, start).json()["data"]["candles"] == whole

        policy = sb.set_range(max_span_days=10, behaviour="keep_earliest")
        assert policy is sb.range_policy and policy.behaviour == "keep_earliest"
        assert policy.max_span_days == {
            **DEFAULT_MAX_SPAN_DAYS,
            **dict.fromkeys(INTRADAY_INTERVALS, 10),
        }
        early = _get(c, key, "1minute", monthly, start).json()["data"]["candles"]
        assert early == sb.market.candle_rows(key, "1minute", start, start + timedelta(days=9))

        sb.set_range(behaviour="keep_recent")  # the limit stays 10
        recent = _get(c, key, "1minute", monthly, start).json()["data"]["candles"]
        assert recent == sb.market.candle_rows(key, "1minute", monthly - timedelta(days=9), monthly)

        sb.set_range(behaviour="error")
        assert _get(c, key, "1minute", monthly, start).status_code == 400
        sb.set_range(max_span_days={"1minute": 41})  # only 1minute changes
        assert _get(c, key, "1minute", monthly, start).json()["data"]["candles"] == whole
        assert _get(c, key, "3minute", monthly, start).status_code == 400
        assert sb.range_policy.span_limit("3minute") == 10
        with pytest.raises(ValueError):
            sb.set_range(behaviour="sometimes")
        assert sb.range_policy.behaviour == "error"  # a rejected change changes nothing


def test_range_policy_rules() -> None:
    policy = RangePolicy.of({"1minute": 20}, "keep_earliest")
    aug = date(2025, 8, 1)
    assert policy.served_range("1minute", aug, aug + timedelta(days=19)) == (
        aug,
        aug + timedelta(days=19),
    )
    assert policy.served_range("1minute", aug, aug + timedelta(days=50)) == (
        aug,
        aug + timedelta(days=19),
    )
    recent = policy.changed(behaviour="truncate")
    assert recent.behaviour == "keep_recent"
    assert recent.served_range("1minute", aug, aug + timedelta(days=50)) == (
        aug + timedelta(days=31),
        aug + timedelta(days=50),
    )
    with pytest.raises(RangeRefused):
        policy.changed(behaviour="error").served_range("1minute", aug, aug + timedelta(days=20))
    assert RangePolicy.of(7).max_span_days == {
        **DEFAULT_MAX_SPAN_DAYS,
        **dict.fromkeys(INTRADAY_INTERVALS, 7),
    }
    for bad in ({"2minute": 5}, {"1minute": 0}, 0, True):
        with pytest.raises((ValueError, TypeError)):
            RangePolicy.of(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SandboxConfig(range_behaviour="clip")
    with pytest.raises(ValueError):
        SandboxConfig(max_span_days={"1minute": 0})
