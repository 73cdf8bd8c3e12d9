"""The endpoints over real HTTP/2: shapes as recorded from Upstox, parsed by the project's parsers."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import duckdb
import httpx
import pandas as pd
import pytest

from expirytrack_dagster.sandbox import Sandbox
from expirytrack_dagster.upstox.models import parse_candles, parse_contracts, parse_expiries
from expirytrack_dagster_tests.conftest import load_sample
from expirytrack_dagster_tests.sandbox.conftest import (
    BASE,
    NIFTY,
    TODAY,
    candle_path,
    monthly_and_weekly,
)

KEY_FORMAT = re.compile(r"^(NSE|BSE)_FO\|\d+\|\d{2}-\d{2}-\d{4}$")


def _ok(response: httpx.Response) -> object:
    assert response.status_code == 200, response.text
    assert response.http_version == "HTTP/2"
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-sandbox"] == "synthetic"
    body = response.json()
    assert body["status"] == "success" and set(body) == {"status", "data"}
    return body["data"]


def _contracts(client: httpx.Client, kind: str, key: str, expiry: date | str) -> list[dict]:
    params = {"instrument_key": key, "expiry_date": str(expiry)}
    data = _ok(client.get(f"{BASE}/{kind}/contract", params=params))
    assert isinstance(data, list)
    return data


def test_expiries(client: httpx.Client, sandbox: Sandbox) -> None:
    data = _ok(client.get(f"{BASE}/expiries", params={"instrument_key": NIFTY}))
    expiries = parse_expiries(data)
    assert [d.isoformat() for d in expiries] == data  # already ascending
    assert TODAY - timedelta(days=365) <= expiries[0] and expiries[-1] <= TODAY
    assert expiries == sandbox.market.expiries(NIFTY)
    recorded = load_sample("expiries_NSE_INDEX-Nifty50.json")["data"]
    assert set(recorded) <= set(data)  # the real list of the same dates, reproduced
    for key in ("NSE_INDEX|Nifty Bank", "BSE_INDEX|SENSEX", "NSE_EQ|INE002A01018"):
        assert parse_expiries(_ok(client.get(f"{BASE}/expiries", params={"instrument_key": key})))


def test_option_contracts_match_the_recorded_shape(client: httpx.Client, sandbox: Sandbox) -> None:
    monthly, weekly = monthly_and_weekly(sandbox)
    sample = load_sample("option_contracts_NIFTY_2025-08-28.json")["data"][0]
    for expiry in (monthly, weekly):
        data = _contracts(client, "option", NIFTY, expiry)
        specs = {c.expired_key: c for c in sandbox.market.expiry_specs(NIFTY, expiry)}
        for item in data:  # same fields, same order, less the optional ones this one omits
            omitted = specs[item["instrument_key"]].omitted_fields
            assert list(item) == [name for name in sample if name not in omitted]
        contracts = parse_contracts(data)
        assert 100 <= len(contracts) <= 240
        assert {c.instrument_type for c in contracts} == {"CE", "PE"}
        assert {c.weekly for c in contracts} == {expiry == weekly}
        tokens = [c.exchange_token for c in contracts]
        assert len(set(tokens)) == len(tokens)
        for c in contracts:
            assert KEY_FORMAT.match(c.expired_instrument_key)
            assert c.expired_instrument_key.endswith(expiry.strftime("|%d-%m-%Y"))
            assert c.expiry == expiry and c.tick_size == 5 and c.lot_size == 75
            assert c.underlying_key == NIFTY and c.underlying_type == "INDEX"
        assert data == sandbox.market.option_contracts(NIFTY, expiry)
    sensex = _contracts(client, "option", "BSE_INDEX|SENSEX", sandbox.market.expiries("SENSEX")[-1])
    assert sensex[0]["segment"] == "BSE_FO" and sensex[0]["exchange"] == "BSE"
    assert sensex[0]["instrument_key"].startswith("BSE_FO|")


def test_future_contracts_match_the_recorded_shape(client: httpx.Client, sandbox: Sandbox) -> None:
    monthly, weekly = monthly_and_weekly(sandbox)
    sample = load_sample("future_contracts_NIFTY_2025-08-28.json")["data"][0]
    data = _contracts(client, "future", NIFTY, monthly)
    assert len(data) == 1 and list(data[0]) == list(sample)
    (future,) = parse_contracts(data)
    assert future.instrument_type == "FUT" and future.tick_size == 10
    assert future.strike_price is None and future.weekly is None
    assert future.trading_symbol == "NIFTY FUT 28 AUG 25"
    assert _contracts(client, "future", NIFTY, weekly) == []  # weekly expiries have no future
    for kind in ("future", "option"):
        assert _contracts(client, kind, NIFTY, "2025-08-29") == []  # a date that is not an expiry


def test_candles(client: httpx.Client, sandbox: Sandbox) -> None:
    monthly, _ = monthly_and_weekly(sandbox)
    (future,) = _contracts(client, "future", NIFTY, monthly)
    key = future["instrument_key"]
    start = date(2025, 8, 1)
    response = client.get(candle_path(key, "1minute", monthly, start))
    data = _ok(response)
    assert set(data) == {"candles"}
    assert not re.search(r"\d\.\d{3,}", response.text)  # prices are written to the paisa
    rows = data["candles"]
    stamps = [r[0] for r in rows]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    assert rows[0][0] == f"{monthly}T15:29:00+05:30" and rows[-1][0] == f"{start}T09:15:00+05:30"
    recorded = load_sample("candles_1minute_NSE_FO-64103-28-08-2025_2025-08-01.json")["data"][
        "candles"
    ]
    assert all(len(r) == len(recorded[0]) == 7 for r in rows)
    assert [type(v) in (int, float) for v in rows[0][1:]] == [True] * 6
    frame = parse_candles(data)
    pd.testing.assert_frame_equal(frame, sandbox.market.candles(key, "1minute", start, monthly))
    per_day = frame.groupby(frame["timestamp"].dt.date).size()
    assert (per_day == 375).all()

    day = _ok(client.get(candle_path(key, "day", monthly, start)))["candles"]
    assert len(day) == len(per_day) and day[0][0] == f"{monthly}T00:00:00+05:30"
    assert parse_candles({"candles": day})["volume"].sum() == frame["volume"].sum()


def test_candle_key_works_encoded_and_raw(client: httpx.Client, sandbox: Sandbox) -> None:
    monthly, _ = monthly_and_weekly(sandbox)
    key = sandbox.market.option_contracts(NIFTY, monthly)[60]["instrument_key"]
    tail = f"/day/{monthly}/{monthly - timedelta(days=20)}"
    encoded = client.get(f"{BASE}/historical-candle/{key.replace('|', '%7C')}{tail}")
    raw = client.get(f"{BASE}/historical-candle/{key}{tail}")
    assert _ok(encoded) == _ok(raw)
    assert _ok(raw)["candles"]


def test_untraded_contract_answers_an_empty_list(client: httpx.Client, sandbox: Sandbox) -> None:
    monthly, _ = monthly_and_weekly(sandbox)
    found = sandbox.market.expiry_contracts(NIFTY, monthly)
    assert found is not None
    dead = next(c for c in found.options if c.dead)
    data = _ok(
        client.get(candle_path(dead.expired_key, "1minute", monthly, monthly - timedelta(days=5)))
    )
    assert data == {"candles": []}
    assert parse_candles(data).empty


def test_http2_is_negotiated_and_counted(client: httpx.Client, sandbox: Sandbox) -> None:
    before = sandbox.stats()
    response = client.get(f"{BASE}/expiries", params={"instrument_key": NIFTY})
    assert response.http_version == "HTTP/2"
    after = sandbox.stats()
    assert after["total"] >= before["total"] + 1
    assert after["by_kind"]["expiries"] >= before["by_kind"]["expiries"] + 1
    assert after["http_versions"].get("2", 0) >= before["http_versions"].get("2", 0) + 1
    assert set(after["by_kind"]) == {
        "expiries",
        "option_contracts",
        "future_contracts",
        "candles",
        "index_candles",
        "other",
    }


def test_http1_still_works(sandbox: Sandbox) -> None:
    with httpx.Client(
        verify=sandbox.ssl_context(), base_url=sandbox.base_url, headers=sandbox.headers
    ) as c:
        response = c.get(f"{BASE}/expiries", params={"instrument_key": NIFTY})
    assert response.status_code == 200 and response.http_version == "HTTP/1.1"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v2/market/timings/2025-08-01", 4),
        ("/v2/market/timings/2025-08-15", 0),  # Independence Day
        ("/v2/market/holidays", None),
    ],
)
def test_market_calendar_endpoints(client: httpx.Client, path: str, expected: int | None) -> None:
    data = _ok(client.get(path))
    assert isinstance(data, list)
    if expected is not None:
        assert len(data) == expected
    else:
        assert {"date": "2025-08-15"}.items() <= next(
            h for h in data if h["date"] == "2025-08-15"
        ).items()


def test_some_contracts_omit_optional_fields(client: httpx.Client, sandbox: Sandbox) -> None:
    monthly, _ = monthly_and_weekly(sandbox)
    data = [
        *_contracts(client, "option", NIFTY, monthly),
        *_contracts(client, "future", NIFTY, monthly),
    ]
    optional = ("freeze_quantity", "minimum_lot")
    missing = [tuple(name for name in optional if name not in item) for item in data]
    kinds = set(missing)
    assert kinds == {(), ("freeze_quantity",), ("minimum_lot",), ("freeze_quantity", "minimum_lot")}
    assert missing.count(()) > len(data) / 2  # most listings are complete, as in the samples
    parsed = parse_contracts(data)
    for item, contract in zip(data, parsed, strict=True):
        assert contract.freeze_quantity == item.get("freeze_quantity")
        assert contract.minimum_lot == item.get("minimum_lot")
        assert contract.lot_size == 75 and contract.trading_symbol and contract.exchange_token
    # The same contracts omit the same fields every time (a checksum, not chance).
    assert data[: len(data) - 1] == _contracts(client, "option", NIFTY, monthly)


def test_omitted_fields_fit_the_contracts_table(
    client: httpx.Client, sandbox: Sandbox, tmp_path: Path
) -> None:
    # Only columns the DuckDB schema allows to be NULL are ever left out.
    from expirytrack_dagster.assets.contracts import contracts_frame
    from expirytrack_dagster.storage.io_manager import insert_frame
    from expirytrack_dagster.storage.schema import create_tables

    monthly, _ = monthly_and_weekly(sandbox)
    contracts = parse_contracts(
        [
            *_contracts(client, "option", NIFTY, monthly),
            *_contracts(client, "future", NIFTY, monthly),
        ]
    )
    with duckdb.connect(str(tmp_path / "contracts.duckdb")) as connection:
        create_tables(connection)
        insert_frame(connection, "main.contracts", contracts_frame("NIFTY|2025-08-28", contracts))
        nulls = connection.execute(
            "SELECT count(*) FILTER (WHERE freeze_quantity IS NULL),"
            " count(*) FILTER (WHERE minimum_lot IS NULL), count(*) FROM main.contracts"
        ).fetchone()
    assert nulls is not None and nulls[0] > 0 and nulls[1] > 0 and nulls[2] == len(contracts)
