"""Error answers in Upstox's envelope: tokens, bad input, unknown keys, date ranges (and truncation)."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date, datetime, timedelta

import httpx
import pytest

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.sandbox import Sandbox
from expirytrack_dagster_tests.sandbox.conftest import (
    BASE,
    NIFTY,
    candle_path,
    http_client,
    monthly_and_weekly,
)


def _error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-sandbox"] == "synthetic"
    body = response.json()
    assert body["status"] == "error" and len(body["errors"]) == 1
    (error,) = body["errors"]
    assert set(error) == {
        "errorCode",
        "message",
        "propertyPath",
        "invalidValue",
        "error_code",
        "property_path",
        "invalid_value",
    }
    assert error["errorCode"] == error["error_code"] == code
    assert error["propertyPath"] == error["property_path"]
    assert error["invalidValue"] == error["invalid_value"]
    return error


def _future_key(sb: Sandbox) -> tuple[str, date]:
    monthly, _ = monthly_and_weekly(sb)
    return sb.market.future_contracts(NIFTY, monthly)[0]["instrument_key"], monthly


EXPIRIES = f"{BASE}/expiries?instrument_key=NSE_INDEX%7CNifty%2050"


def test_missing_or_wrong_token_is_401(sandbox: Sandbox) -> None:
    with httpx.Client(http2=True, verify=sandbox.ssl_context(), base_url=sandbox.base_url) as c:
        missing = c.get(EXPIRIES)
        wrong = c.get(EXPIRIES, headers={"Authorization": "Bearer nope"})
        not_bearer = c.get(EXPIRIES, headers={"Authorization": f"Basic {sandbox.access_token}"})
    for response in (missing, wrong, not_bearer):
        error = _error(response, 401, "UDAPI100050")
        assert error["message"] == "Invalid token used to access API"
        assert error["propertyPath"] is None and error["invalidValue"] is None


def test_token_with_a_deadline(
    fresh_sandbox: Callable[..., AbstractContextManager[Sandbox]],
) -> None:
    with fresh_sandbox() as sb, http_client(sb) as c:
        sb.add_token("late", expires_at=datetime.now(IST) + timedelta(seconds=0.4))
        sb.add_token("gone", expires_at=datetime.now(IST) - timedelta(seconds=1))
        sb.add_token(
            "naive-ist", expires_at=datetime.now(IST).replace(tzinfo=None) + timedelta(hours=1)
        )
        assert c.get(EXPIRIES, headers={"Authorization": "Bearer late"}).status_code == 200
        assert c.get(EXPIRIES, headers={"Authorization": "Bearer naive-ist"}).status_code == 200
        _error(c.get(EXPIRIES, headers={"Authorization": "Bearer gone"}), 401, "UDAPI100050")
        time.sleep(0.5)
        _error(c.get(EXPIRIES, headers={"Authorization": "Bearer late"}), 401, "UDAPI100050")
        assert c.get(EXPIRIES).status_code == 200  # the default token never expires
        sb.remove_token(sb.access_token)
        _error(c.get(EXPIRIES), 401, "UDAPI100050")


@pytest.mark.parametrize(
    ("interval", "to_date", "from_date", "code", "field"),
    [
        ("2minute", "2025-08-28", "2025-08-01", "UDAPI100036", "interval"),
        ("1minute", "2025-8-28", "2025-08-01", "UDAPI100036", "to_date"),
        ("1minute", "2025-08-28", "01-08-2025", "UDAPI100036", "from_date"),
        ("1minute", "2025-02-30", "2025-02-01", "UDAPI100036", "to_date"),
        ("1minute", "2025-08-01", "2025-08-28", "UDAPI100038", "from_date"),
    ],
)
def test_bad_candle_parameters_are_400(
    client: httpx.Client,
    sandbox: Sandbox,
    interval: str,
    to_date: str,
    from_date: str,
    code: str,
    field: str,
) -> None:
    key, _ = _future_key(sandbox)
    error = _error(client.get(candle_path(key, interval, to_date, from_date)), 400, code)
    assert error["propertyPath"] == field
    if field == "interval":
        assert "2minute" in error["message"]


def test_bad_contract_parameters_are_400(client: httpx.Client) -> None:
    _error(client.get(f"{BASE}/expiries"), 400, "UDAPI100036")
    error = _error(
        client.get(
            f"{BASE}/option/contract", params={"instrument_key": NIFTY, "expiry_date": "28-08-2025"}
        ),
        400,
        "UDAPI100036",
    )
    assert error["propertyPath"] == "expiry_date" and error["invalidValue"] == "28-08-2025"
    _error(
        client.get(f"{BASE}/future/contract", params={"instrument_key": NIFTY}), 400, "UDAPI100036"
    )
    _error(
        client.get(candle_path("NSE_FO:123", "day", "2025-08-28", "2025-08-01")), 400, "UDAPI100011"
    )


def test_unknown_instruments_are_400(client: httpx.Client) -> None:
    # ../shared/upstox-api.md gives UDAPI100011 without a status; 400 like every input error.
    for path, params in (
        (f"{BASE}/expiries", {"instrument_key": "NSE_INDEX|Nifty 51"}),
        (
            f"{BASE}/option/contract",
            {"instrument_key": "NSE_EQ|INE000000000", "expiry_date": "2025-08-28"},
        ),
    ):
        error = _error(client.get(path, params=params), 400, "UDAPI100011")
        assert error["message"] == "Invalid Instrument key"
    for key in ("NSE_FO|12|28-08-2025", "NSE_FO|35000|29-08-2025", "BSE_FO|35000|28-08-2025"):
        error = _error(
            client.get(candle_path(key, "day", "2025-08-28", "2025-08-01")), 400, "UDAPI100011"
        )
        assert error["invalidValue"] == key and error["propertyPath"] == "instrument_key"
    _error(client.get(f"{BASE}/expiries", params={"instrument_key": "Nifty"}), 400, "UDAPI100011")
    _error(client.get("/v3/expired-instruments/expiries"), 404, "UDAPI100060")


def test_span_limits_per_interval(client: httpx.Client, sandbox: Sandbox) -> None:
    key, monthly = _future_key(sandbox)
    for interval, days in (("1minute", 31), ("15minute", 31), ("day", 366)):
        inside = client.get(candle_path(key, interval, monthly, monthly - timedelta(days=days - 1)))
        assert inside.status_code == 200, interval
        too_long = client.get(candle_path(key, interval, monthly, monthly - timedelta(days=days)))
        error = _error(too_long, 400, "UDAPI1148")
        assert error["message"] == "Invalid date range"


def test_truncate_mode_keeps_the_days_nearest_to_date(
    fresh_sandbox: Callable[..., AbstractContextManager[Sandbox]],
) -> None:
    with (
        fresh_sandbox(range_behaviour="truncate", max_span_days={"1minute": 10}) as sb,
        http_client(sb) as c,
    ):
        key, monthly = _future_key(sb)
        start = monthly - timedelta(days=40)
        response = c.get(candle_path(key, "1minute", monthly, start))
        assert response.status_code == 200
        rows = response.json()["data"]["candles"]
        first_kept = monthly - timedelta(days=9)
        assert rows == sb.market.candle_rows(key, "1minute", first_kept, monthly)
        assert rows[-1][0].startswith(min(r[0][:10] for r in rows)) and rows[-1][0][:10] >= str(
            first_kept
        )
        # 30minute keeps its default 366 days: no truncation there.
        long = c.get(candle_path(key, "30minute", monthly, start)).json()["data"]["candles"]
        assert long[-1][0][:10] < str(first_kept)


def test_token_without_plus_plan_gets_udapi1149(
    fresh_sandbox: Callable[..., AbstractContextManager[Sandbox]],
) -> None:
    with fresh_sandbox() as sb:
        sb.add_token("no-plan-token", plus_plan=False)
        key, monthly = _future_key(sb)
        with httpx.Client(
            http2=True,
            verify=sb.ssl_context(),
            base_url=sb.base_url,
            headers={"Authorization": "Bearer no-plan-token"},
        ) as c:
            for response in (
                c.get(EXPIRIES),
                c.get(f"{BASE}/option/contract", params={"instrument_key": NIFTY}),
                c.get(f"{BASE}/future/contract", params={"instrument_key": NIFTY}),
                c.get(candle_path(key, "1minute", monthly, monthly)),
            ):
                error = _error(response, 401, "UDAPI1149")
                assert error["message"] == (
                    "This API is available exclusively with an Upstox Plus plan subscription."
                )
            # Not an expired-instruments endpoint: the plan does not matter there.
            assert c.get("/v2/market/holidays").status_code == 200
        with http_client(sb) as c:  # the configured token has the plan
            assert c.get(EXPIRIES).status_code == 200


def test_config_token_without_plus_plan(
    fresh_sandbox: Callable[..., AbstractContextManager[Sandbox]],
) -> None:
    with fresh_sandbox(plus_plan=False) as sb, http_client(sb) as c:
        _error(c.get(EXPIRIES), 401, "UDAPI1149")
        sb.add_token(sb.access_token)  # re-adding with the default plan grants it
        assert c.get(EXPIRIES).status_code == 200
