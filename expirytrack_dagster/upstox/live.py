"""Upstox's live option endpoints: the put/call option chain and the current expiries, typed.

``/v2/option/chain`` answers one object per strike with a call and a put leg; each leg becomes one
row of a snapshot frame (``SNAPSHOT_COLUMNS``). Units as Upstox sends them: OI, volume and
quantities in units (not lots), ``iv`` and ``pop`` in percent, ``pcr`` per strike (put OI / call
OI). Every field is optional in Upstox's SDK, so a missing value is a null, never a zero: ``pop``
is null in responses from before Upstox added it. The requests go through the client's shared
rate limiter and are counted in the same ledger as the expired-data requests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.upstox.errors import MalformedResponse

if TYPE_CHECKING:
    from expirytrack_dagster.upstox.client import UpstoxClient

OPTION_CHAIN_PATH = "/v2/option/chain"
OPTION_CONTRACT_PATH = "/v2/option/contract"

_MARKET_FLOATS = ("ltp", "close_price", "bid_price", "ask_price")
_MARKET_INTS = ("volume", "oi", "prev_oi", "bid_qty", "ask_qty")
_GREEKS = ("iv", "delta", "gamma", "theta", "vega", "pop")

SNAPSHOT_COLUMNS: dict[str, str] = {
    "captured_at": "datetime64[ns, Asia/Kolkata]",
    "underlying_symbol": "string",
    "underlying_key": "string",
    "expiry": "object",
    "strike_price": "float64",
    "option_type": "string",
    "instrument_key": "string",
    "ltp": "Float64",
    "close_price": "Float64",
    "volume": "Int64",
    "oi": "Int64",
    "prev_oi": "Int64",
    "bid_price": "Float64",
    "bid_qty": "Int64",
    "ask_price": "Float64",
    "ask_qty": "Int64",
    "iv": "Float64",
    "delta": "Float64",
    "gamma": "Float64",
    "theta": "Float64",
    "vega": "Float64",
    "pop": "Float64",
    "underlying_spot": "Float64",
    "pcr": "Float64",
}
"""One row per option leg per capture minute: the columns and their pandas dtypes, in order.

``captured_at`` is the capture minute (IST, seconds zero); ``expiry`` a ``datetime.date``.
"""


@dataclass(frozen=True, slots=True)
class CurrentExpiry:
    """An expiry whose contracts trade now; ``weekly`` False for the monthly (the one with a future)."""

    expiry: date
    weekly: bool


def capture_minute(moment: datetime) -> datetime:
    """``moment`` in IST with seconds dropped: the minute a snapshot is filed under."""
    return moment.astimezone(IST).replace(second=0, microsecond=0)


def _number(value: Any, field: str, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedResponse(f"{what}: {field} is not a number ({value!r})")
    return float(value)


def _whole(value: Any, field: str, what: str) -> int | None:
    number = _number(value, field, what)
    return None if number is None else round(number)


def parse_option_chain(
    data: Any, captured_at: datetime, underlying_symbol: str, what: str = "option chain"
) -> pd.DataFrame:
    """The ``data`` of a ``/v2/option/chain`` answer as a snapshot frame (``SNAPSHOT_COLUMNS``).

    Rows ascend by strike, CE before PE. A strike without one leg gives only the other; a leg
    without ``instrument_key`` is rejected (nothing could be joined to it). An empty ``data``
    (a past expiry) is an empty frame with the same columns.
    """
    if not isinstance(data, Sequence) or isinstance(data, str | bytes):
        raise MalformedResponse(f"{what}: expected a list of strikes")
    minute = capture_minute(captured_at)
    columns: dict[str, list[Any]] = {name: [] for name in SNAPSHOT_COLUMNS if name != "captured_at"}
    for strike_row in data:
        if not isinstance(strike_row, Mapping):
            raise MalformedResponse(f"{what}: a strike is not an object")
        strike = _number(strike_row.get("strike_price"), "strike_price", what)
        raw_expiry = strike_row.get("expiry")
        if strike is None or not isinstance(raw_expiry, str):
            raise MalformedResponse(f"{what}: a strike lacks strike_price or expiry")
        try:
            expiry = date.fromisoformat(raw_expiry)
        except ValueError:
            raise MalformedResponse(f"{what}: expiry {raw_expiry!r} is not a date") from None
        spot = _number(strike_row.get("underlying_spot_price"), "underlying_spot_price", what)
        pcr = _number(strike_row.get("pcr"), "pcr", what)
        for option_type, leg_name in (("CE", "call_options"), ("PE", "put_options")):
            leg = strike_row.get(leg_name)
            if leg is None:
                continue
            if not isinstance(leg, Mapping) or not isinstance(leg.get("instrument_key"), str):
                raise MalformedResponse(f"{what}: {leg_name} at {strike:g} has no instrument_key")
            market = leg.get("market_data") or {}
            greeks = leg.get("option_greeks") or {}
            columns["underlying_symbol"].append(underlying_symbol)
            columns["underlying_key"].append(strike_row.get("underlying_key"))
            columns["expiry"].append(expiry)
            columns["strike_price"].append(strike)
            columns["option_type"].append(option_type)
            columns["instrument_key"].append(leg["instrument_key"])
            for name in _MARKET_FLOATS:
                columns[name].append(_number(market.get(name), name, what))
            for name in _MARKET_INTS:
                columns[name].append(_whole(market.get(name), name, what))
            for name in _GREEKS:
                columns[name].append(_number(greeks.get(name), name, what))
            columns["underlying_spot"].append(spot)
            columns["pcr"].append(pcr)
    size = len(columns["expiry"])
    frame = pd.DataFrame(
        {
            "captured_at": pd.DatetimeIndex([minute] * size, tz=IST).as_unit("ns"),
            **{
                name: pd.array(values, dtype=SNAPSHOT_COLUMNS[name])
                if SNAPSHOT_COLUMNS[name] != "object"
                else values
                for name, values in columns.items()
            },
        }
    )
    return frame.sort_values(["strike_price", "option_type"], kind="stable", ignore_index=True)


def parse_current_expiries(data: Any, what: str = "option contracts") -> list[CurrentExpiry]:
    """The distinct expiries of a ``/v2/option/contract`` answer (no ``expiry_date``), ascending.

    An expiry is weekly when its contracts say ``weekly: true``; Upstox marks the monthly ones
    false.
    """
    if not isinstance(data, Sequence) or isinstance(data, str | bytes):
        raise MalformedResponse(f"{what}: expected a list of contracts")
    weekly: dict[date, bool] = {}
    for contract in data:
        raw = contract.get("expiry") if isinstance(contract, Mapping) else None
        if not isinstance(raw, str):
            raise MalformedResponse(f"{what}: a contract has no expiry")
        try:
            expiry = date.fromisoformat(raw[:10])
        except ValueError:
            raise MalformedResponse(f"{what}: expiry {raw!r} is not a date") from None
        weekly[expiry] = weekly.get(expiry, True) and bool(contract.get("weekly", False))
    return [CurrentExpiry(expiry, weekly[expiry]) for expiry in sorted(weekly)]


async def fetch_option_chain(
    client: UpstoxClient,
    underlying_key: str,
    expiry: date,
    underlying_symbol: str,
    captured_at: datetime | None = None,
) -> pd.DataFrame:
    """One ``/v2/option/chain`` request through ``client``'s limiter, as a snapshot frame."""
    data = await client._get(
        "option_chain",
        OPTION_CHAIN_PATH,
        {"instrument_key": underlying_key, "expiry_date": expiry.isoformat()},
    )
    return parse_option_chain(
        data,
        captured_at or datetime.now(IST),
        underlying_symbol,
        f"option chain {underlying_key} {expiry}",
    )


async def fetch_current_expiries(client: UpstoxClient, underlying_key: str) -> list[CurrentExpiry]:
    """One ``/v2/option/contract`` request (no ``expiry_date``): the expiries trading now."""
    data = await client._get(
        "current_contracts", OPTION_CONTRACT_PATH, {"instrument_key": underlying_key}
    )
    return parse_current_expiries(data, f"option contracts {underlying_key}")
