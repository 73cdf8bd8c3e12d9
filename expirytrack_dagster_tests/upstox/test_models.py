"""Parsing of every recorded Upstox response, and rejection of broken ones."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from expirytrack_dagster.upstox.errors import MalformedResponse
from expirytrack_dagster.upstox.models import (
    CANDLE_COLUMNS,
    parse_candles,
    parse_contract,
    parse_contracts,
    parse_expiries,
)
from expirytrack_dagster_tests.conftest import SAMPLES, load_sample


def test_every_sample_file_is_covered() -> None:
    names = {p.name for p in SAMPLES.glob("*.json")}
    assert names == {
        "candles_1minute_NSE_FO-64103-28-08-2025_2025-08-01.json",
        "expiries_NSE_INDEX-Nifty50.json",
        "future_contracts_NIFTY_2025-08-28.json",
        "option_contracts_NIFTY_2025-08-28.json",
    }


def test_expiries_sample() -> None:
    body = load_sample("expiries_NSE_INDEX-Nifty50.json")
    expiries = parse_expiries(body["data"])
    assert len(expiries) == len(body["data"]) == 51
    assert expiries == sorted(expiries)
    assert expiries[0] == date(2024, 10, 3)
    assert date(2025, 4, 9) in expiries  # the holiday-shifted Wednesday expiry
    assert expiries[-1] == date(2025, 9, 16)


def test_option_contracts_sample() -> None:
    contracts = parse_contracts(load_sample("option_contracts_NIFTY_2025-08-28.json")["data"])
    assert len(contracts) == 194
    assert {c.instrument_type for c in contracts} == {"CE", "PE"}
    strikes = sorted({c.strike_price for c in contracts})
    assert (strikes[0], strikes[-1], len(strikes)) == (22600.0, 27400.0, 97)
    first = contracts[0]
    assert first.expired_instrument_key == "NSE_FO|71706|28-08-2025"
    assert first.expiry == date(2025, 8, 28)
    assert (first.lot_size, first.tick_size, first.weekly) == (75, 5.0, False)
    assert first.underlying_key == "NSE_INDEX|Nifty 50"
    assert len({c.expired_instrument_key for c in contracts}) == 194


def test_future_contracts_sample_has_no_strike_or_weekly() -> None:
    (future,) = parse_contracts(load_sample("future_contracts_NIFTY_2025-08-28.json")["data"])
    assert future.instrument_type == "FUT"
    assert future.strike_price is None and future.weekly is None
    assert future.expired_instrument_key == "NSE_FO|64103|28-08-2025"
    assert future.tick_size == 10.0


def test_candles_sample_ascending_ist_and_typed() -> None:
    body = load_sample("candles_1minute_NSE_FO-64103-28-08-2025_2025-08-01.json")
    frame = parse_candles(body["data"])
    assert list(frame.columns) == list(CANDLE_COLUMNS)
    assert len(frame) == 375
    assert frame["timestamp"].is_monotonic_increasing
    first, last = frame["timestamp"].iloc[0], frame["timestamp"].iloc[-1]
    assert first.utcoffset() == timedelta(hours=5, minutes=30)
    assert first.to_pydatetime().replace(tzinfo=None) == datetime(2025, 8, 1, 9, 15)
    assert last.to_pydatetime().replace(tzinfo=None) == datetime(2025, 8, 1, 15, 29)
    assert str(frame["volume"].dtype) == "int64" and str(frame["open_interest"].dtype) == "int64"
    newest = body["data"]["candles"][0]
    assert frame.iloc[-1][["open", "high", "low", "close"]].tolist() == newest[1:5]


def test_empty_candles_are_a_valid_answer() -> None:
    frame = parse_candles({"candles": []})
    assert frame.empty and list(frame.columns) == list(CANDLE_COLUMNS)
    assert str(frame["timestamp"].dtype) == "datetime64[ns, Asia/Kolkata]"


@pytest.mark.parametrize(
    "field",
    [
        "instrument_key",
        "expiry",
        "instrument_type",
        "lot_size",
        "tick_size",
        "trading_symbol",
        "exchange_token",
        "underlying_key",
    ],
)
def test_missing_required_field_is_named(field: str) -> None:
    record = dict(load_sample("option_contracts_NIFTY_2025-08-28.json")["data"][0])
    del record[field]
    with pytest.raises(MalformedResponse, match=f"'{field}'"):
        parse_contract(record)


@pytest.mark.parametrize(
    "absent",
    [
        ("freeze_quantity",),
        ("minimum_lot",),
        ("freeze_quantity", "minimum_lot", "name", "segment", "exchange", "underlying_type"),
    ],
)
def test_absent_optional_fields_are_none(absent: tuple[str, ...]) -> None:
    for sample in (
        "option_contracts_NIFTY_2025-08-28.json",
        "future_contracts_NIFTY_2025-08-28.json",
    ):
        record = dict(load_sample(sample)["data"][0])
        for field in absent:
            del record[field]
        contract = parse_contract(record)
        assert all(getattr(contract, field) is None for field in absent)
        assert contract.lot_size == 75 and contract.underlying_symbol == "NIFTY"
        record.update(dict.fromkeys(absent))  # explicit nulls read the same
        assert parse_contract(record) == contract


def test_optional_numbers_are_still_checked() -> None:
    record = dict(load_sample("option_contracts_NIFTY_2025-08-28.json")["data"][0])
    assert parse_contract({**record, "freeze_quantity": 1800.0}).freeze_quantity == 1800
    with pytest.raises(MalformedResponse, match="'freeze_quantity'"):
        parse_contract({**record, "freeze_quantity": "lots"})
    with pytest.raises(MalformedResponse, match="'minimum_lot'"):
        parse_contract({**record, "minimum_lot": [75]})


def test_option_without_strike_is_rejected() -> None:
    record = dict(load_sample("option_contracts_NIFTY_2025-08-28.json")["data"][0])
    del record["strike_price"]
    with pytest.raises(MalformedResponse, match="strike_price"):
        parse_contract(record)


def test_unknown_extra_fields_are_tolerated() -> None:
    record = dict(load_sample("future_contracts_NIFTY_2025-08-28.json")["data"][0])
    record["brand_new_field"] = {"nested": True}
    assert parse_contract(record).instrument_type == "FUT"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"candles": [["2025-08-01T09:15:00+05:30", 1, 2, 0.5]]}, "needs 7 values"),
        ({"candles": [["not-a-time", 1, 2, 0.5, 1, 10, 0]]}, "timestamp"),
        ({"candles": [["2025-08-01T09:15:00", 1, 2, 0.5, 1, 10, 0]]}, "no UTC offset"),
        ({"candles": [["2025-08-01T09:15:00+05:30", "x", 2, 0.5, 1, 10, 0]]}, "non-numeric"),
        ({"candles": [["2025-08-01T09:15:00+05:30", None, 2, 0.5, 1, 10, 0]]}, "missing"),
        ({"candles": [["2025-08-01T09:15:00+05:30", 1, 2, 0.5, 1, 10.5, 0]]}, "whole numbers"),
        ({"candles": [["2025-08-01T09:15:00+05:30", *[[1]] * 6]]}, "non-numeric"),
        (
            {"candles": [["2025-08-01T09:15:00+05:30", 1, 2, 0.5, 1, 10, 0], [7, [1], 2, 3]]},
            r"candles\[1\]",
        ),
        ({"candles": [["2025-08-01T09:15:00+05:30", 1, 2, 0.5, 1, 10, 0], 7]}, r"candles\[1\]"),
        ({"no_candles": []}, "'candles'"),
        (["not", "an", "object"], "should be an object"),
    ],
)
def test_broken_candles_fail_clearly(data: object, message: str) -> None:
    with pytest.raises(MalformedResponse, match=message):
        parse_candles(data)


def test_bad_expiry_date_fails_clearly() -> None:
    with pytest.raises(MalformedResponse, match="YYYY-MM-DD"):
        parse_expiries(["2025-13-01"])


def test_values_past_the_seventh_are_ignored_row_by_row() -> None:
    rows = [
        ["2025-08-01T09:15:00+05:30", 1, 2, 0.5, 1.5, 10, 100],
        ["2025-08-01T09:16:00+05:30", 1.5, 2.5, 1, 2, 20, 110, "extra"],
    ]
    frame = parse_candles({"candles": rows})
    assert frame["close"].tolist() == [1.5, 2.0] and frame["open_interest"].tolist() == [100, 110]
