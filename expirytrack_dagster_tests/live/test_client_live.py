"""The live client methods: parsing Upstox's recorded chains and talking to the sandbox."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.sandbox import SandboxConfig, run_sandbox
from expirytrack_dagster.sandbox.inprocess import transport_for
from expirytrack_dagster.upstox.client import ClientSettings, UpstoxClient
from expirytrack_dagster.upstox.errors import MalformedResponse
from expirytrack_dagster.upstox.live import SNAPSHOT_COLUMNS, parse_option_chain

AT = datetime(2024, 6, 20, 10, 31, 42, tzinfo=IST)
LIVE_SAMPLES = Path(__file__).parents[1] / "fixtures" / "upstox_live_samples"


def load_sample(name: str) -> dict:
    """A live-API example copied verbatim from the shared note (Upstox's docs, a real capture)."""
    return json.loads((LIVE_SAMPLES / name).read_text())


def test_recorded_chain_without_pop_parses_every_field() -> None:
    body = load_sample("option_chain_NIFTY_2024-06-27_no_pop.json")
    frame = parse_option_chain(body["data"], AT, "NIFTY")
    assert list(frame.columns) == list(SNAPSHOT_COLUMNS)
    assert len(frame) == 4
    assert frame["captured_at"].iloc[0] == pd.Timestamp("2024-06-20 10:31", tz=IST)
    first = frame.iloc[0].to_dict()
    assert first["option_type"] == "CE" and first["instrument_key"] == "NSE_FO|64411"
    assert first["strike_price"] == 23850 and first["expiry"] == date(2024, 6, 27)
    assert (first["ltp"], first["close_price"], first["volume"]) == (78, 45.7, 118034175)
    assert (first["oi"], first["prev_oi"]) == (3409800, 1982175)
    assert (first["bid_price"], first["bid_qty"], first["ask_price"], first["ask_qty"]) == (
        77.75, 25, 78.65, 25,
    )  # fmt: skip
    assert (first["iv"], first["delta"], first["gamma"]) == (14.76, 0.5199, 0.0022)
    assert (first["theta"], first["vega"]) == (-36.7092, 4.9759)
    assert (first["underlying_spot"], first["pcr"]) == (23868.8, 1.3547)
    assert frame["pop"].isna().all()  # absent before Upstox added it: null, not zero
    put = frame[(frame.strike_price == 23900) & (frame.option_type == "PE")].iloc[0]
    assert put["instrument_key"] == "NSE_FO|64414" and put["oi"] == 3379575


def test_official_example_keeps_pop_and_zero_gamma() -> None:
    body = load_sample("option_chain_NIFTY_2025-02-13_official.json")
    frame = parse_option_chain(body["data"], AT, "NIFTY")
    assert frame["option_type"].tolist() == ["CE", "PE"]
    assert frame["pop"].tolist() == [40.56, 0.15]
    assert frame.loc[1, "gamma"] == 0 and not pd.isna(frame.loc[1, "gamma"])
    assert frame.loc[0, "pcr"] == 7515.3


def test_malformed_chain_is_rejected_naming_the_field() -> None:
    with pytest.raises(MalformedResponse, match="ltp"):
        parse_option_chain(
            [{"expiry": "2025-02-13", "strike_price": 1, "call_options": {
                "instrument_key": "NSE_FO|1", "market_data": {"ltp": "x"}}}],
            AT, "NIFTY",
        )  # fmt: skip
    assert parse_option_chain([], AT, "NIFTY").empty


def test_client_reads_the_sandbox_chain_through_the_shared_ledger(tmp_path: Path) -> None:
    config = SandboxConfig(today=date(2026, 11, 20))
    with run_sandbox(config, in_process=True) as sb:
        sb.state.live.clock.set(datetime(2026, 11, 20, 11, 0, 10, tzinfo=IST), speed=0)
        settings = ClientSettings(state_dir=tmp_path, ledger_id="user-1")

        async def go():
            transport = transport_for(sb.base_url)
            async with UpstoxClient(
                sb.base_url, sb.access_token, settings, transport=transport
            ) as client:
                expiries = await client.get_current_expiries("NSE_INDEX|Nifty 50")
                chain = await client.get_option_chain(
                    "NSE_INDEX|Nifty 50", expiries[0].expiry, underlying_symbol="NIFTY"
                )
                return expiries, chain, client.limiter.snapshot(), client.stats

        expiries, chain, ledger, stats = asyncio.run(go())
    assert [e.expiry for e in expiries] == sb.state.live.current_expiries("NIFTY")
    market = sb.state.market
    assert [e.weekly for e in expiries] == [
        not market.is_monthly("NIFTY", e.expiry) for e in expiries
    ]
    assert any(e.weekly for e in expiries) and any(not e.weekly for e in expiries)
    assert len(chain) > 40 and set(chain["option_type"]) == {"CE", "PE"}
    assert chain["pop"].notna().all() and chain["expiry"].eq(expiries[0].expiry).all()
    assert stats.requests == {"current_contracts": 1, "option_chain": 1}
    assert [w["count"] for w in ledger["windows"]] == [2, 2, 2]  # the same ledger as candles
