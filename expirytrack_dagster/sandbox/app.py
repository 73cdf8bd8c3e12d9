"""The sandbox's ASGI app: Upstox's expired-instrument endpoints behind token, rate and fault gates."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from expirytrack_dagster.calendar import is_trading_day, session_for
from expirytrack_dagster.sandbox import responses as r
from expirytrack_dagster.sandbox.candles import INTERVAL_MINUTES
from expirytrack_dagster.sandbox.contracts import parse_expired_key
from expirytrack_dagster.sandbox.drop import drop_request
from expirytrack_dagster.sandbox.faults import FaultInjector, double_candle
from expirytrack_dagster.sandbox.live_routes import live_routes
from expirytrack_dagster.sandbox.login import LOGIN_PREFIX
from expirytrack_dagster.sandbox.market import UnknownInstrument
from expirytrack_dagster.sandbox.ranges import V3_UNITS, RangeRefused, v3_served_range
from expirytrack_dagster.sandbox.state import SandboxState
from expirytrack_dagster.sandbox.stats import path_kind

SANDBOX_HEADER = (b"x-sandbox", b"synthetic")
"""Sent on every response: the data is synthetic, not Upstox's."""

EXPIRED_PREFIX = "/v2/expired-instruments"
"""Every endpoint under this path needs the Upstox Plus plan (``UDAPI1149`` without it)."""

V3_CANDLE_PREFIX = "/v3/historical-candle"
"""Candles of active instruments (the index itself); no Plus plan needed."""

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CORRUPT = "expirytrack.corrupt"  # scope key: the injector that spoils this candle response
_KEY_FAULT = "expirytrack.key_fault"  # scope key: the per-key defect this response carries
_MALFORMED = {
    "candles": b'{"status":"success","data":{"candles":[["2025-08-01T15:29:00+05:30",246',
    "other": b'{"status":"success","data":["2025-',
}


def _parse_date(raw: str | None, name: str) -> date:
    if raw is None:
        raise r.ApiError(400, r.INVALID_INPUT_CODE, f"{name} is required", name, None)
    try:
        if not _DATE.match(raw):
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        raise r.ApiError(
            400,
            r.INVALID_INPUT_CODE,
            f"{name} must be a valid date in yyyy-mm-dd format",
            name,
            raw,
        ) from None


def _date_range(params: Mapping[str, str]) -> tuple[date, date]:
    """``from_date`` and ``to_date`` of a candle path, the first not after the second."""
    to_date = _parse_date(params["to_date"], "to_date")
    from_date = _parse_date(params["from_date"], "from_date")
    if from_date > to_date:
        raise r.ApiError(
            400,
            r.INVALID_RANGE_ORDER_CODE,
            "to_date must be greater than or equal to from_date",
            "from_date",
            params["from_date"],
        )
    return from_date, to_date


def _underlying_key(request: Request) -> str:
    key = request.query_params.get("instrument_key")
    if not key:
        raise r.ApiError(400, r.INVALID_INPUT_CODE, "instrument_key is required", "instrument_key")
    if "|" not in key:
        raise _invalid_key(key)
    return key


def _invalid_key(key: str) -> r.ApiError:
    """A malformed key or one naming no instrument (the status is explained in ``responses``)."""
    return r.ApiError(
        r.INVALID_KEY_STATUS, r.INVALID_KEY_CODE, r.INVALID_KEY_MESSAGE, "instrument_key", key
    )


def _v3_interval(unit: str, raw: str) -> str:
    """The sandbox interval name (``1minute``, ``day``) of a V3 ``unit``/``interval`` pair.

    Upstox allows minutes 1–300, hours 1–5 and days 1; the sandbox serves the minute intervals
    its market aggregates to (1, 3, 5, 15, 30) and days 1, and refuses the rest with the input
    error (400 ``UDAPI100036``) naming what it serves.
    """
    if unit not in V3_UNITS:
        raise r.ApiError(
            400,
            r.INVALID_INPUT_CODE,
            f"Invalid unit {unit!r}: use one of {', '.join(V3_UNITS)}",
            "unit",
            unit,
        )
    low, high = V3_UNITS[unit]
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise r.ApiError(
            400,
            r.INVALID_INPUT_CODE,
            f"Invalid interval {raw!r} for unit {unit}: use {low} to {high}",
            "interval",
            raw,
        )
    name = "day" if unit == "days" else f"{int(raw)}minute"
    if unit == "hours" or name not in INTERVAL_MINUTES:
        raise r.ApiError(
            400,
            r.INVALID_INPUT_CODE,
            f"The sandbox serves minutes 1, 3, 5, 15, 30 and days 1, not {unit}/{raw}",
            "interval",
            raw,
        )
    return name


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def build_app(state: SandboxState) -> ASGIApp:
    """The full app for ``state``: routes wrapped in the token, rate-limit, fault and stats gate."""
    market = state.market

    async def expiries(request: Request) -> Response:
        key = _underlying_key(request)
        try:
            found = market.expiries(key)
        except UnknownInstrument:
            raise _invalid_key(key) from None
        return r.success_response([d.isoformat() for d in found])

    def contract_list(options: bool):
        async def endpoint(request: Request) -> Response:
            key = _underlying_key(request)
            expiry = _parse_date(request.query_params.get("expiry_date"), "expiry_date")
            try:
                listed = (market.option_contracts if options else market.future_contracts)(
                    key, expiry
                )
            except UnknownInstrument:
                raise _invalid_key(key) from None
            return r.success_response(listed)

        return endpoint

    async def historical_candle(request: Request) -> Response:
        params = request.path_params
        key, interval = params["instrument_key"], params["interval"]
        try:
            parse_expired_key(key)
        except ValueError:
            raise _invalid_key(key) from None
        if interval not in INTERVAL_MINUTES:
            raise r.ApiError(
                400,
                r.INVALID_INPUT_CODE,
                f"Invalid interval {interval!r}: use one of {', '.join(INTERVAL_MINUTES)}",
                "interval",
                interval,
            )
        from_date, to_date = _date_range(params)
        try:
            spec = market.contract(key)
        except UnknownInstrument:
            raise _invalid_key(key) from None
        try:
            from_date, to_date = state.ranges.served_range(interval, from_date, to_date)
        except RangeRefused:
            raise r.ApiError(*r.INVALID_DATE_RANGE) from None
        days = market.candle_json_days(spec, interval, from_date, to_date)
        injector: FaultInjector | None = request.scope.get(_CORRUPT)
        doubled = state.faults.config.doubled_candle(key)
        if not days and injector is not None:
            injector.refund()  # nothing to corrupt in an empty answer
            request.scope[_CORRUPT] = None
        if not days or (injector is None and doubled is None):
            return r.success_raw(f'{{"candles":[{",".join(days)}]}}')
        rows = json.loads(f"[{','.join(days)}]")
        if doubled is not None:
            rows = double_candle(rows, doubled)
            request.scope[_KEY_FAULT] = f"{doubled}_key"
        if injector is not None:
            _, rows = injector.corrupt(rows)
        return r.success_response({"candles": rows})

    async def v3_historical_candle(request: Request) -> Response:
        """``/v3/historical-candle/{key}/{unit}/{interval}/{to}/{from}`` for an underlying's
        own key: candles ``[ts, o, h, l, c, volume, 0]`` newest first (volume 0 for an index)."""
        params = request.path_params
        key, unit = params["instrument_key"], params["unit"]
        interval = _v3_interval(unit, params["interval"])
        from_date, to_date = _date_range(params)
        try:
            market.underlying_profile(key)
        except UnknownInstrument:
            raise _invalid_key(key) from None
        try:
            from_date, to_date = v3_served_range(
                state.ranges.behaviour, unit, int(params["interval"]), from_date, to_date
            )
        except RangeRefused:
            raise r.ApiError(*r.INVALID_DATE_RANGE) from None
        days = market.underlying_json_days(key, interval, from_date, to_date)
        return r.success_raw(f'{{"candles":[{",".join(days)}]}}')

    async def holidays(request: Request) -> Response:
        year = market.today.year
        day, out = date(year, 1, 1), []
        while day.year == year:
            if day.weekday() < 5 and not is_trading_day(day):
                out.append(
                    {
                        "date": day.isoformat(),
                        "description": "Trading holiday",
                        "holiday_type": "TRADING_HOLIDAY",
                        "closed_exchanges": ["NSE", "NFO", "CDS", "BSE", "BFO", "BCD"],
                        "open_exchanges": [],
                    }
                )
            day += timedelta(days=1)
        return r.success_response(out)

    async def timings(request: Request) -> Response:
        day = _parse_date(request.path_params["date"], "date")
        session = session_for(day)
        if session is None:
            return r.success_response([])
        window = {"start_time": _epoch_ms(session.open), "end_time": _epoch_ms(session.close)}
        return r.success_response([{"exchange": x, **window} for x in ("NSE", "NFO", "BSE", "BFO")])

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, r.ApiError)
        return exc.response()

    async def unexpected_error(request: Request, exc: Exception) -> Response:
        return r.error_response(500, r.SERVER_ERROR_CODE, r.SERVER_ERROR_MESSAGE)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 405:
            return r.error_response(405, "UDAPI100060", "Method not allowed.")
        return r.error_response(*r.NOT_FOUND)

    base = EXPIRED_PREFIX
    app = Starlette(
        routes=[
            Route(f"{base}/expiries", expiries),
            Route(f"{base}/option/contract", contract_list(options=True)),
            Route(f"{base}/future/contract", contract_list(options=False)),
            Route(
                f"{base}/historical-candle/{{instrument_key}}/{{interval}}/{{to_date}}/{{from_date}}",
                historical_candle,
            ),
            Route(
                f"{V3_CANDLE_PREFIX}/{{instrument_key}}/{{unit}}/{{interval}}/{{to_date}}/{{from_date}}",
                v3_historical_candle,
            ),
            Route("/v2/market/holidays", holidays),
            Route("/v2/market/timings/{date}", timings),
            *state.login.routes(),
            *live_routes(state.live, _underlying_key, _parse_date, _invalid_key),
        ],
        exception_handlers={
            r.ApiError: api_error,
            404: http_error,
            405: http_error,
            Exception: unexpected_error,  # a bug still answers in the envelope, as JSON
        },
    )
    return SandboxGate(app, state)


def _bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


def _candle_key(path: str) -> str:
    # /v2/expired-instruments/historical-candle/{key}/{interval}/{to}/{from}; hypercorn has
    # already percent-decoded the path, unquote again in case a client double-encoded "|".
    parts = path.split("/")
    return unquote(parts[4]) if len(parts) > 4 else ""


class _Exchange:
    """One request passing the gate: records itself in the stats exactly once.

    Recording happens as the response starts (or just before a drop), never after the answer
    left: a client that reads ``stats()`` right after its response must see its request.
    """

    def __init__(self, state: SandboxState, scope: Scope, send: Send, kind: str):
        self.state = state
        self.scope = scope
        self.raw_send = send
        self.kind = kind
        self.fault: str | None = None
        self.recorded = False

    def record(self, status: int | None) -> None:
        if self.recorded:
            return
        self.recorded = True
        fault = self.fault
        if fault == "corrupt_candles" and self.scope.get(_CORRUPT, True) is None:
            fault = None  # nothing to corrupt in an empty answer
        fault = fault or self.scope.get(_KEY_FAULT)
        version = self.scope.get("http_version", "1.1")
        self.state.stats.record(self.kind, status, version, fault, _bearer_token(self.scope))

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.record(message["status"])
            message = {**message, "headers": [*message.get("headers", ()), SANDBOX_HEADER]}
        await self.raw_send(message)


class SandboxGate:
    """ASGI middleware in front of the routes: labels, authenticates, checks the Upstox Plus plan,
    rate-limits, injects faults and records every request in the stats, in that order."""

    def __init__(self, app: ASGIApp, state: SandboxState):
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(self.state, scope, send, path_kind(scope["path"]))
        try:
            await self._handle(scope, receive, exchange)
        finally:
            exchange.record(None)  # no response started: dropped or failed

    async def _handle(self, scope: Scope, receive: Receive, exchange: _Exchange) -> None:
        state, send, kind, path = self.state, exchange.send, exchange.kind, scope["path"]
        if path.startswith(LOGIN_PREFIX):  # logging in is how a client gets a token
            await self.app(scope, receive, send)
            return
        token = _bearer_token(scope)
        if token is None or not state.tokens.is_valid(token):
            await r.error_response(*r.INVALID_TOKEN)(scope, receive, send)
            return
        if path.startswith(EXPIRED_PREFIX) and not state.tokens.has_plus_plan(token):
            await r.error_response(*r.PLAN_REQUIRED)(scope, receive, send)
            return
        if not state.limiter.try_acquire(token):
            await r.error_response(*r.TOO_MANY_REQUESTS)(scope, receive, send)
            return
        injector = state.faults
        if kind == "candles" and _candle_key(path) in injector.config.fail_keys:
            exchange.fault = "fail_key"
            await r.error_response(500, r.SERVER_ERROR_CODE, r.SERVER_ERROR_MESSAGE)(
                scope, receive, send
            )
            return
        fault = exchange.fault = injector.decide(path, kind == "candles")
        if fault == "drop":
            exchange.record(None)
            await drop_request(scope, exchange.raw_send)
            return
        if fault == "server_error":
            status = injector.server_error_status()
            await r.error_response(status, r.SERVER_ERROR_CODE, r.SERVER_ERROR_MESSAGE)(
                scope, receive, send
            )
            return
        if fault == "malformed":
            body = _MALFORMED["candles" if kind == "candles" else "other"]
            await Response(body, 200, media_type=r.JSON)(scope, receive, send)
            return
        if fault == "slow":
            await asyncio.sleep(injector.config.slow_seconds)
        if fault == "corrupt_candles":
            scope[_CORRUPT] = injector
        await self.app(scope, receive, send)
