"""The V3 historical-candle endpoint for an underlying's own key, over real HTTP/2 on loopback."""

from __future__ import annotations

from datetime import date

import httpx
import pandas as pd

from expirytrack_dagster.sandbox import Sandbox
from expirytrack_dagster.sandbox.market import INDEX_MINUTES_FROM
from expirytrack_dagster.sandbox.ranges import v3_last_day, v3_served_range
from expirytrack_dagster_tests.sandbox.conftest import NIFTY, TINY, TINY_EXPIRY, http_client

RELIANCE = "NSE_EQ|INE002A01018"


def v3_path(key: str, unit: str, interval: int | str, to_date: object, from_date: object) -> str:
    encoded = key.replace("|", "%7C").replace(" ", "%20")
    return f"/v3/historical-candle/{encoded}/{unit}/{interval}/{to_date}/{from_date}"


def _rows(response: httpx.Response) -> list[list]:
    assert response.status_code == 200, response.text
    assert response.headers["x-sandbox"] == "synthetic"
    body = response.json()
    assert body["status"] == "success"
    return body["data"]["candles"]


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    (error,) = response.json()["errors"]
    assert error["errorCode"] == code == error["error_code"]
    return error["message"]


def test_index_minutes_match_the_truth_newest_first_with_zero_volume_and_oi(
    client: httpx.Client, sandbox: Sandbox
) -> None:
    rows = _rows(client.get(v3_path(NIFTY, "minutes", 1, "2025-08-04", "2025-08-01")))
    assert len(rows) == 2 * 375  # two sessions (1 and 4 August), every minute
    assert rows[0][0] == "2025-08-04T15:29:00+05:30" and rows[-1][0] == "2025-08-01T09:15:00+05:30"
    assert {(r[5], r[6]) for r in rows} == {(0, 0)}  # an index has no volume and no OI
    truth = sandbox.market.truth_index_candles(NIFTY, date(2025, 8, 1), date(2025, 8, 4))
    served = pd.DataFrame(rows[::-1], columns=["ts", "open", "high", "low", "close", "v", "oi"])
    assert served["ts"].tolist() == [t.isoformat() for t in truth["timestamp"]]
    for column in ("open", "high", "low", "close"):
        assert served[column].tolist() == truth[column].tolist()
    assert (truth["low"] <= truth[["open", "close"]].min(axis=1)).all()
    assert (truth["high"] >= truth[["open", "close"]].max(axis=1)).all()


def test_a_share_has_volume_and_five_minute_bars_aggregate_the_minutes(
    client: httpx.Client, sandbox: Sandbox
) -> None:
    minutes = _rows(client.get(v3_path(RELIANCE, "minutes", 1, "2025-08-01", "2025-08-01")))
    fives = _rows(client.get(v3_path(RELIANCE, "minutes", 5, "2025-08-01", "2025-08-01")))
    assert len(minutes) == 375 and len(fives) == 75
    assert all(r[5] > 0 for r in minutes) and {r[6] for r in minutes} == {0}
    first_five = minutes[::-1][:5]
    assert fives[-1] == [
        "2025-08-01T09:15:00+05:30",
        first_five[0][1],
        max(r[2] for r in first_five),
        min(r[3] for r in first_five),
        first_five[-1][4],
        sum(r[5] for r in first_five),
        0,
    ]


def test_the_month_limit_refuses_a_longer_request_with_the_date_range_error(
    client: httpx.Client,
) -> None:
    ok = _rows(client.get(v3_path(NIFTY, "minutes", 1, "2025-07-31", "2025-07-01")))
    assert ok[0][0].startswith("2025-07-31") and ok[-1][0].startswith("2025-07-01")
    refused = client.get(v3_path(NIFTY, "minutes", 1, "2025-08-01", "2025-07-01"))
    assert _error(refused, 400, "UDAPI1148") == "Invalid date range"
    # a quarter for 30-minute candles
    assert _rows(client.get(v3_path(NIFTY, "minutes", 30, "2025-09-30", "2025-07-01")))
    _error(client.get(v3_path(NIFTY, "minutes", 30, "2025-10-01", "2025-07-01")), 400, "UDAPI1148")


def test_month_arithmetic_and_the_cut_behaviours() -> None:
    assert v3_last_day(date(2025, 1, 31), 1) == date(2025, 2, 27)  # clamped to February's end
    assert v3_last_day(date(2024, 12, 15), 1) == date(2025, 1, 14)
    assert v3_last_day(date(2025, 11, 30), 3) == date(2026, 2, 27)
    long = (date(2025, 1, 1), date(2025, 3, 10))
    assert v3_served_range("keep_earliest", "minutes", 1, *long) == (long[0], date(2025, 1, 31))
    start, end = v3_served_range("keep_recent", "minutes", 1, *long)
    assert end == long[1] and v3_last_day(start, 1) == end


def test_no_minutes_before_2022_none_after_today_and_unknown_keys_refused(
    client: httpx.Client, sandbox: Sandbox
) -> None:
    assert date(2022, 1, 1) == INDEX_MINUTES_FROM
    assert _rows(client.get(v3_path(NIFTY, "minutes", 1, "2021-12-31", "2021-12-01"))) == []
    edge = _rows(client.get(v3_path(NIFTY, "minutes", 1, "2022-01-05", "2021-12-20")))
    assert edge and min(r[0] for r in edge) >= "2022-01-03"
    today = sandbox.market.today.isoformat()
    after = _rows(client.get(v3_path(NIFTY, "minutes", 1, "2025-10-10", today)))
    assert all(r[0] <= f"{today}T23:59" for r in after)
    for key in ("NSE_FO|64103|28-08-2025", "NIFTY", "NSE_INDEX|Unknown"):
        _error(
            client.get(v3_path(key, "minutes", 1, "2025-08-01", "2025-08-01")), 400, "UDAPI100011"
        )
    for unit, interval in (("weeks", 1), ("minutes", 301), ("minutes", 2), ("hours", 1)):
        message = _error(
            client.get(v3_path(NIFTY, unit, interval, "2025-08-01", "2025-08-01")),
            400,
            "UDAPI100036",
        )
        assert str(interval) in message or unit in message
    _error(client.get(v3_path(NIFTY, "minutes", 1, "2025-08-01", "2025-08-02")), 400, "UDAPI100038")


def test_no_plus_plan_needed_and_a_bad_token_refused(fresh_sandbox) -> None:
    with fresh_sandbox(plus_plan=False, extra_profiles=(TINY,)) as sb, http_client(sb) as c:
        path = v3_path(TINY.instrument_key, "minutes", 1, TINY_EXPIRY, TINY_EXPIRY)
        assert len(_rows(c.get(path))) == 375
        _error(c.get(path, headers={"Authorization": "Bearer nope"}), 401, "UDAPI100050")


def test_the_rate_limit_applies_to_v3(fresh_sandbox) -> None:
    limited = fresh_sandbox(per_second=2, per_minute=None, per_30_minutes=None, time_scale=100.0)
    with limited as sb, http_client(sb) as c:
        path = v3_path(NIFTY, "minutes", 1, "2025-08-01", "2025-08-01")
        statuses = [c.get(path).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
