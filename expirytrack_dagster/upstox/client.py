"""The Upstox expired-instruments client: one async HTTP/2 session, typed results, shared rate limits.

Every request waits for the cross-process rate limiter (the three Upstox windows hold for every run,
step and sensor sharing a token), is retried with backoff on 429, 5xx, timeouts, dropped connections
and unreadable bodies, and fails at once with the API's own message on input errors and 401.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import ssl
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson
import pandas as pd

from expirytrack_dagster.upstox.errors import (
    LOGIN_FIX,
    InvalidDateRange,
    InvalidRequest,
    MalformedResponse,
    PlanRequired,
    RateLimited,
    TokenExpired,
    UpstoxError,
    UpstoxUnavailable,
    error_envelope,
)
from expirytrack_dagster.upstox.ledger import ledger_path as ledger_path  # its old home
from expirytrack_dagster.upstox.ledger import open_ledger
from expirytrack_dagster.upstox.limiter import RateLimits, SharedRateLimiter
from expirytrack_dagster.upstox.live import (
    CurrentExpiry,
    fetch_current_expiries,
    fetch_option_chain,
)
from expirytrack_dagster.upstox.models import (
    INTERVALS,
    Contract,
    empty_candles,
    parse_candles,
    parse_contracts,
    parse_expiries,
    parse_index_candles,
)
from expirytrack_dagster.upstox.resilience import CircuitBreaker, RetryPolicy
from expirytrack_dagster.upstox.spans import SPANS_FILE, SpanMemory
from expirytrack_dagster.upstox.windows import split_windows

log = logging.getLogger(__name__)
# At DEBUG, hpack logs raw HTTP/2 header blocks, Authorization included; keep it above DEBUG so
# turning on verbose logging can never write the token out.
logging.getLogger("hpack").setLevel(max(logging.getLogger("hpack").level, logging.INFO))

UPSTOX_BASE_URL = "https://api.upstox.com"
API_PREFIX = "/v2/expired-instruments"
V3_CANDLE_PREFIX = "/v3/historical-candle"
"""Candles of active instruments; index keys (``NSE_INDEX|Nifty 50``) are always active."""


@dataclass(frozen=True)
class ClientSettings:
    """Everything about how the client talks to Upstox, apart from where and with which token."""

    timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    max_connections: int = 8
    ca_cert_path: Path | None = None  # trust this PEM too (the sandbox's self-signed certificate)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    limits: RateLimits = field(default_factory=RateLimits)
    max_span_days: int | None = None  # never ask for more days than this in one request
    state_dir: Path = Path("data/state")  # rate-limit ledger and verified request spans
    ledger_id: str | None = None  # whose budget: the Upstox user id; default: the token's hash
    # Where the ledger lives: empty = SQLite under state_dir (one machine), postgresql://… = shared
    # by every machine (upstox.ledger). May hold a password: kept out of repr.
    ledger_url: str | None = field(default=None, repr=False)


@dataclass
class RequestStats:
    """What this client spent: requests by kind, answers by status, retries and time waited."""

    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    http_versions: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    rate_limited: int = 0
    transport_errors: int = 0
    limiter_wait_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)  # per answered request, for p50/p95

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def as_metadata(self) -> dict[str, Any]:
        return {
            "api_requests": self.total,
            "api_requests_by_kind": dict(self.requests),
            "api_retries": self.retries,
            "api_429s": self.rate_limited,
            "api_transport_errors": self.transport_errors,
            "limiter_wait_s": round(self.limiter_wait_s, 3),
        }


def token_fingerprint(access_token: str) -> str:
    """A short one-way name for a token: shared state is keyed by it, never by the token."""
    return hashlib.sha256(access_token.encode()).hexdigest()[:16]


def _classify(response: httpx.Response, what: str) -> UpstoxError:
    status = response.status_code
    code, message = error_envelope(response)
    text = f"{what}: {message}"
    if code == "UDAPI1149":
        return PlanRequired(text, code=code, status=status)
    if status == 401:
        return TokenExpired(f"{text} — {LOGIN_FIX}", code=code, status=status)
    if status == 429:
        return RateLimited(text, code=code, status=status)
    if code == "UDAPI1148" or "invalid date range" in message.lower():
        return InvalidDateRange(text, code=code, status=status)
    if 400 <= status < 500:
        return InvalidRequest(text, code=code, status=status)
    return UpstoxUnavailable(text, code=code, status=status)


class UpstoxClient:
    """Async client for the four expired-instrument endpoints.

    Use as ``async with UpstoxClient(base_url, token) as client: await client.get_expiries(key)``.
    ``transport`` is the seam for tests that want a custom httpx transport; by default it is real
    HTTP/2 over TLS.
    """

    def __init__(
        self,
        base_url: str,
        access_token: str,
        settings: ClientSettings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not access_token:
            raise TokenExpired(f"no Upstox access token — {LOGIN_FIX}")
        self.settings = settings or ClientSettings()
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).netloc
        self.stats = RequestStats()
        state_dir = Path(self.settings.state_dir)
        self.limiter = SharedRateLimiter(
            open_ledger(
                self.settings.ledger_url,
                state_dir,
                self.settings.ledger_id or token_fingerprint(access_token),
            ),
            self.settings.limits,
        )
        self.spans = SpanMemory(state_dir / SPANS_FILE)
        self._breaker = CircuitBreaker(
            self.settings.retry.circuit_failures,
            self.settings.retry.circuit_cooldown_s,
            self.settings.retry.circuit_min_failing_s,
        )
        verify: ssl.SSLContext | bool = True
        if self.settings.ca_cert_path is not None:
            verify = ssl.create_default_context(cafile=str(self.settings.ca_cert_path))
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            http2=True,
            verify=verify,
            transport=transport,
            timeout=httpx.Timeout(self.settings.timeout_s, connect=self.settings.connect_timeout_s),
            limits=httpx.Limits(
                max_connections=self.settings.max_connections,
                max_keepalive_connections=self.settings.max_connections,
            ),
            headers={
                "Authorization": f"Bearer {access_token}",
                "Accept": "application/json",
                "User-Agent": "expirytrack/0.1",
            },
        )

    def __repr__(self) -> str:
        return f"UpstoxClient(base_url={self.base_url!r})"

    async def __aenter__(self) -> UpstoxClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        self.limiter.close()  # its connection; the object reopens one if used again

    # -- endpoints -------------------------------------------------------------------------

    async def get_expiries(self, instrument_key: str) -> list[date]:
        """Every expiry date Upstox lists for the underlying ``instrument_key``, ascending."""
        data = await self._get(
            "expiries", f"{API_PREFIX}/expiries", {"instrument_key": instrument_key}
        )
        return parse_expiries(data)

    async def get_option_contracts(self, instrument_key: str, expiry_date: date) -> list[Contract]:
        """The expired CE/PE contracts of one underlying and expiry (may be empty)."""
        data = await self._get(
            "option_contracts",
            f"{API_PREFIX}/option/contract",
            {"instrument_key": instrument_key, "expiry_date": expiry_date.isoformat()},
        )
        return parse_contracts(data, f"option contracts {instrument_key} {expiry_date}")

    async def get_future_contracts(self, instrument_key: str, expiry_date: date) -> list[Contract]:
        """The expired futures of one underlying and expiry (empty for a weekly expiry)."""
        data = await self._get(
            "future_contracts",
            f"{API_PREFIX}/future/contract",
            {"instrument_key": instrument_key, "expiry_date": expiry_date.isoformat()},
        )
        return parse_contracts(data, f"future contracts {instrument_key} {expiry_date}")

    async def get_candles(
        self, expired_instrument_key: str, interval: str, start: date, end: date
    ) -> pd.DataFrame:
        """One request: the candles Upstox answers for ``start``..``end`` (inclusive), ascending.

        The answer is returned as served: whether it is complete is the caller's question (see
        ``upstox.spans``). A refused range raises ``InvalidDateRange``.
        """
        if interval not in INTERVALS:
            raise InvalidRequest(f"interval {interval!r} is not one of {', '.join(INTERVALS)}")
        if start > end:
            raise InvalidRequest(f"from_date {start} is after to_date {end}")
        return await self._candles_window(expired_instrument_key, interval, start, end)

    async def get_historical_data(
        self,
        expired_instrument_key: str,
        interval: str,
        from_date: date,
        to_date: date,
        *,
        span_days: int,
    ) -> pd.DataFrame:
        """Candles from ``from_date`` to ``to_date`` in windows of ``span_days``, ascending.

        For a notebook; collection goes through ``collection`` so that every window is judged.
        """
        frames = [
            await self.get_candles(expired_instrument_key, interval, start, end)
            for start, end in split_windows(from_date, to_date, span_days, from_end=True)
        ]
        non_empty = [f for f in frames if not f.empty]
        if not non_empty:
            return empty_candles()
        out = pd.concat(non_empty, ignore_index=True)
        return out.sort_values("timestamp", kind="stable").reset_index(drop=True)

    async def get_index_candles(self, instrument_key: str, start: date, end: date) -> pd.DataFrame:
        """One V3 request: the 1-minute candles of an active instrument, ``start``..``end``.

        For an underlying's own key (``NSE_INDEX|Nifty 50``, ``NSE_EQ|INE002A01018``): columns
        ``timestamp`` (candle start, IST), ``open``, ``high``, ``low``, ``close``, ``volume``
        (0 for an index), ascending. The docs allow at most one month per request for 1-minute
        candles; a longer range may be refused (``InvalidDateRange``) or cut, so whether the
        answer is complete is the caller's question (``assets.index_candles`` checks every day).
        """
        if start > end:
            raise InvalidRequest(f"from_date {start} is after to_date {end}")
        key = quote(instrument_key, safe="")
        path = f"{V3_CANDLE_PREFIX}/{key}/minutes/1/{end.isoformat()}/{start.isoformat()}"
        data = await self._get("index_candles", path, None)
        return parse_index_candles(data, f"index candles {instrument_key} {start}..{end}")

    async def get_option_chain(
        self,
        underlying_key: str,
        expiry: date,
        *,
        underlying_symbol: str = "",
        captured_at: datetime | None = None,
    ) -> pd.DataFrame:
        """The live put/call chain of one current expiry as a snapshot frame (``upstox.live``)."""
        return await fetch_option_chain(
            self, underlying_key, expiry, underlying_symbol or underlying_key, captured_at
        )

    async def get_current_expiries(self, underlying_key: str) -> list[CurrentExpiry]:
        """The expiries whose contracts trade now, ascending, each marked weekly or monthly."""
        return await fetch_current_expiries(self, underlying_key)

    async def _candles_window(
        self, expired_instrument_key: str, interval: str, start: date, end: date
    ) -> pd.DataFrame:
        key = quote(expired_instrument_key, safe="")
        path = (
            f"{API_PREFIX}/historical-candle/{key}/{interval}/{end.isoformat()}/{start.isoformat()}"
        )
        data = await self._get("candles", path, None)
        return parse_candles(data, f"candles {expired_instrument_key} {start}..{end}")

    # -- transport, retries, limits --------------------------------------------------------

    async def _get(self, kind: str, path: str, params: Mapping[str, str] | None) -> Any:
        policy = self.settings.retry
        what = f"{kind} {path.removeprefix(API_PREFIX)}"
        failure: UpstoxError | None = None
        consecutive_429 = 0
        for attempt in range(1, policy.max_attempts + 1):
            if attempt > 1:
                self.stats.retries += 1
            self._breaker.before_request()
            waited = await self.limiter.acquire_async()  # then add: see collection.collect
            self.stats.limiter_wait_s += waited
            self.stats.requests[kind] += 1
            try:
                response = await self._http.get(path, params=params)
            except httpx.TimeoutException as exc:
                self.stats.transport_errors += 1
                failure = UpstoxUnavailable(f"{what}: timed out ({type(exc).__name__})")
            except httpx.TransportError as exc:
                self.stats.transport_errors += 1
                failure = UpstoxUnavailable(f"{what}: connection failed ({type(exc).__name__})")
            else:
                self.stats.latencies_s.append(response.elapsed.total_seconds())
                self.stats.statuses[response.status_code] += 1
                self.stats.http_versions[response.http_version] += 1
                if response.status_code == 200:
                    try:
                        return self._data(response, what)
                    except MalformedResponse as exc:
                        failure = exc
                else:
                    error = _classify(response, what)
                    if isinstance(error, TokenExpired | PlanRequired | InvalidRequest):
                        self._breaker.record_success()  # the API is up; the request is wrong
                        raise error
                    failure = error
                    if isinstance(error, RateLimited):
                        self.stats.rate_limited += 1
                        consecutive_429 += 1
                        pause = self._rate_limit_pause(response, consecutive_429)
                        log.warning(
                            "429 from Upstox; pausing every user of this token %.2fs", pause
                        )
                        await self.limiter.pause_async(pause, reason="429 from Upstox")
                        continue  # the limiter's pause is the backoff
            self._breaker.record_failure()
            if attempt < policy.max_attempts:
                await asyncio.sleep(policy.backoff(attempt))
        assert failure is not None
        raise type(failure)(
            f"{failure.message} (gave up after {policy.max_attempts} attempts)",
            code=failure.code,
            status=failure.status,
        )

    def _data(self, response: httpx.Response, what: str) -> Any:
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise MalformedResponse(f"{what}: the response body is not valid JSON") from None
        if not isinstance(body, dict) or body.get("status") != "success" or "data" not in body:
            raise MalformedResponse(f"{what}: expected {{'status': 'success', 'data': ...}}")
        self._breaker.record_success()
        return body["data"]

    def _rate_limit_pause(self, response: httpx.Response, consecutive: int) -> float:
        policy = self.settings.retry
        pause = min(policy.max_delay_s, policy.rate_limit_pause_s * 2 ** (consecutive - 1))
        retry_after = response.headers.get("Retry-After")
        if retry_after:
            # An HTTP-date Retry-After is ignored: our own pause stands.
            with contextlib.suppress(ValueError):
                pause = max(pause, float(retry_after))
        return pause
