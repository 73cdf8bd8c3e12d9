"""The sandbox's routes for the live endpoints: ``/v2/option/chain`` and ``/v2/option/contract``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from expirytrack_dagster.sandbox import responses as r
from expirytrack_dagster.sandbox.live import LiveMarket
from expirytrack_dagster.sandbox.market import UnknownInstrument

OPTION_CHAIN_PATH = "/v2/option/chain"
OPTION_CONTRACT_PATH = "/v2/option/contract"


def live_routes(
    live: LiveMarket,
    underlying_key: Callable[[Request], str],
    parse_date: Callable[[str | None, str], date],
    invalid_key: Callable[[str], r.ApiError],
) -> list[Route]:
    """The two live routes, validating parameters with the app's own helpers."""

    async def option_chain(request: Request) -> Response:
        key = underlying_key(request)
        expiry = parse_date(request.query_params.get("expiry_date"), "expiry_date")
        try:
            return r.success_response(live.option_chain(key, expiry))
        except UnknownInstrument:
            raise invalid_key(key) from None

    async def option_contracts(request: Request) -> Response:
        key = underlying_key(request)
        raw = request.query_params.get("expiry_date")
        expiry = None if raw is None else parse_date(raw, "expiry_date")
        try:
            return r.success_response(live.contracts(key, expiry))
        except UnknownInstrument:
            raise invalid_key(key) from None

    return [
        Route(OPTION_CHAIN_PATH, option_chain),
        Route(OPTION_CONTRACT_PATH, option_contracts),
    ]
