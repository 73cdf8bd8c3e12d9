"""The sandbox's live endpoints, in-process: shapes of the shared note, consistent with the market."""

from __future__ import annotations

import asyncio
import time
from datetime import date, datetime

import httpx
import pytest

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.sandbox.app import build_app
from expirytrack_dagster.sandbox.config import SandboxConfig
from expirytrack_dagster.sandbox.live import LiveClock
from expirytrack_dagster.sandbox.paths import previous_trading_day
from expirytrack_dagster.sandbox.state import SandboxState

DAY = date(2026, 11, 20)
NIFTY = "NSE_INDEX|Nifty 50"


@pytest.fixture
def sandbox() -> tuple[SandboxState, object]:
    state = SandboxState(SandboxConfig(today=DAY, access_token="live-test"))
    state.tokens.add("live-test", plus_plan=False)  # live endpoints need no Plus plan
    state.live.clock.set(datetime(2026, 11, 20, 10, 30, 30, tzinfo=IST), speed=0)
    app = build_app(state)
    return state, app


def _get(app, path: str, **params: str) -> httpx.Response:
    return asyncio.run(_aget(app, path, **params))


async def _aget(app, path: str, **params: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sb") as client:
        return await client.get(path, params=params, headers={"Authorization": "Bearer live-test"})


def test_contracts_without_expiry_list_every_current_expiry(sandbox) -> None:
    state, app = sandbox
    response = _get(app, "/v2/option/contract", instrument_key=NIFTY)
    assert response.status_code == 200
    listed = response.json()["data"]
    expiries = sorted({row["expiry"] for row in listed})
    assert expiries == [d.isoformat() for d in state.live.current_expiries("NIFTY")]
    assert len(expiries) >= 2 and expiries[0] >= DAY.isoformat()
    assert all(row["instrument_key"].count("|") == 1 for row in listed)  # no |DD-MM-YYYY
    one = _get(app, "/v2/option/contract", instrument_key=NIFTY, expiry_date=expiries[0])
    assert {row["expiry"] for row in one.json()["data"]} == {expiries[0]}


def test_chain_matches_the_market_model_at_now(sandbox) -> None:
    state, app = sandbox
    expiry = state.live.current_expiries("NIFTY")[0]
    response = _get(app, "/v2/option/chain", instrument_key=NIFTY, expiry_date=str(expiry))
    assert response.status_code == 200
    rows = response.json()["data"]
    strikes = [row["strike_price"] for row in rows]
    assert strikes == sorted(strikes) and len(rows) > 20
    specs = {
        (float(s.strike), s.instrument_type): s
        for s in state.market._expiry_contracts(0, expiry).options
    }
    before = previous_trading_day(DAY)
    checked = 0
    for row in rows:
        assert set(row) == {
            "expiry", "pcr", "strike_price", "underlying_key", "underlying_spot_price",
            "call_options", "put_options",
        }  # fmt: skip
        call, put = row["call_options"]["market_data"], row["put_options"]["market_data"]
        expected_pcr = round(put["oi"] / call["oi"], 4) if call["oi"] else 0
        assert row["pcr"] == expected_pcr
        for kind, leg in (("CE", row["call_options"]), ("PE", row["put_options"])):
            spec = specs[(float(row["strike_price"]), kind)]
            data = leg["market_data"]
            assert set(leg["option_greeks"]) == {"vega", "theta", "gamma", "delta", "iv", "pop"}
            assert data["oi"] % spec.profile.lot_size == 0  # units, not lots
            bars = state.market.minute_bars(spec, DAY)
            done = bars.minute <= 74  # at 10:30:30 the 10:29 candle is the last that ended
            if done.any():
                assert data["ltp"] == bars.close[done][-1] / 100
                assert data["volume"] == bars.volume[done].sum()
                checked += 1
            prev = state.market.minute_bars(spec, before)
            if len(prev):
                assert data["close_price"] == prev.close[-1] / 100
                assert data["prev_oi"] == state.market._oi_at_close(spec, before)
    assert checked > 20
    atm = min(rows, key=lambda row: abs(row["strike_price"] - row["underlying_spot_price"]))
    assert 5 < atm["call_options"]["option_greeks"]["iv"] < 60  # percent, not a fraction
    assert 0.3 < atm["call_options"]["option_greeks"]["delta"] < 0.7


def test_chain_moves_with_the_clock_and_past_expiry_is_empty(sandbox) -> None:
    state, app = sandbox
    expiry = state.live.current_expiries("NIFTY")[0]
    first = _get(app, "/v2/option/chain", instrument_key=NIFTY, expiry_date=str(expiry))
    state.live.clock.set(datetime(2026, 11, 20, 14, 0, 5, tzinfo=IST), speed=0)
    later = _get(app, "/v2/option/chain", instrument_key=NIFTY, expiry_date=str(expiry))
    volume = lambda r: sum(x["call_options"]["market_data"]["volume"] for x in r.json()["data"])  # noqa: E731
    assert volume(later) > volume(first)
    past = _get(app, "/v2/option/chain", instrument_key=NIFTY, expiry_date="2026-11-17")
    assert past.status_code == 200 and past.json() == {"status": "success", "data": []}
    bad = _get(app, "/v2/option/chain", instrument_key="NSE_INDEX|Nope", expiry_date="2026-11-24")
    assert bad.status_code >= 400 and bad.json()["status"] == "error"


def test_live_clock_runs_at_its_speed() -> None:
    clock = LiveClock()
    start = datetime(2026, 11, 20, 9, 15, tzinfo=IST)
    clock.set(start, speed=600)
    time.sleep(0.05)
    elapsed = (clock.now() - start).total_seconds()
    assert 25 <= elapsed < 120
    clock.set(start, speed=0)
    assert clock.now() == start
    with pytest.raises(ValueError):
        clock.set(datetime(2026, 11, 20, 9, 15))
