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
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pandas as pd

from expirytrack_dagster.upstox.errors import (
    InvalidDateRange,
    InvalidRequest,
    MalformedResponse,
    PlanRequired,
    RateLimited,
    TokenExpired,
    UpstoxError,
    UpstoxUnavailable,
)
from expirytrack_dagster.upstox.limiter import RateLimits, SharedRateLimiter
from expirytrack_dagster.upstox.models import (
    INTERVALS,
    Contract,
    empty_candles,
    parse_candles,
    parse_contracts,
    parse_expiries,
)
from expirytrack_dagster.upstox.resilience import CircuitBreaker, RetryPolicy
from expirytrack_dagster.upstox.windows import (
    DEFAULT_MAX_SPAN_DAYS,
    WindowMemory,
    span_days,
    split_windows,
)

log = logging.getLogger(__name__)
# At DEBUG, hpack logs raw HTTP/2 header blocks, Authorization included; keep it above DEBUG so
# turning on verbose logging can never write the token out.
logging.getLogger("hpack").setLevel(max(logging.getLogger("hpack").level, logging.INFO))

UPSTOX_BASE_URL = "https://api.upstox.com"
API_PREFIX = "/v2/expired-instruments"
LOGIN_HINT = "run `expirytrack login`, or set UPSTOX_ACCESS_TOKEN to a fresh token"


@dataclass(frozen=True)
class ClientSettings:
    """Everything about how the client talks to Upstox, apart from where and with which token."""

    timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    max_connections: int = 8
    ca_cert_path: Path | None = None  # trust this PEM too (the sandbox's self-signed certificate)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    limits: RateLimits = field(default_factory=RateLimits)
    max_span_days: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_MAX_SPAN_DAYS))
    state_dir: Path = Path("data/state")  # rate-limit ledger and learned window spans


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


def _error_detail(response: httpx.Response) -> tuple[str | None, str]:
    try:
        body = response.json()
        first = body["errors"][0]
        code = first.get("errorCode") or first.get("error_code")
        return code, str(first.get("message") or "no message")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None, f"{response.reason_phrase or 'error'} (body is not an Upstox error envelope)"


def _classify(response: httpx.Response, what: str) -> UpstoxError:
    status = response.status_code
    code, message = _error_detail(response)
    text = f"{what}: {message}"
    if code == "UDAPI1149":
        return PlanRequired(text, code=code, status=status)
    if status == 401:
        return TokenExpired(f"{text} — {LOGIN_HINT}", code=code, status=status)
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
            raise TokenExpired(f"no Upstox access token — {LOGIN_HINT}")
        self.settings = settings or ClientSettings()
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).netloc
        self.stats = RequestStats()
        state_dir = Path(self.settings.state_dir)
        self.limiter = SharedRateLimiter(
            state_dir / "ratelimit" / f"{token_fingerprint(access_token)}.sqlite",
            self.settings.limits,
        )
        self.window_memory = WindowMemory(
            state_dir / "window_spans.sqlite", self.settings.max_span_days
        )
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

    async def get_historical_data(
        self,
        expired_instrument_key: str,
        interval: str,
        from_date: date,
        to_date: date,
        *,
        continuous: bool = False,
    ) -> pd.DataFrame:
        """Candles of one expired contract from ``from_date`` to ``to_date`` (inclusive), ascending.

        The range is split into windows no longer than the learned maximum span for ``interval``.
        ``continuous=True`` says the contract trades every session (a future): an answer that
        starts well after its window's start is then checked for silent truncation.
        """
        if interval not in INTERVALS:
            raise InvalidRequest(f"interval {interval!r} is not one of {', '.join(INTERVALS)}")
        if from_date > to_date:
            raise InvalidRequest(f"from_date {from_date} is after to_date {to_date}")
        span = self.window_memory.start_span(self.host, interval)
        # Each pending entry: (start, end, span of the window whose truncation it probes, or None).
        pending: deque[tuple[date, date, int | None]] = deque(
            (start, end, None) for start, end in split_windows(from_date, to_date, span)
        )
        frames: list[pd.DataFrame] = []
        while pending:
            start, end, probing = pending.popleft()
            days = span_days(start, end)
            try:
                frame = await self._candles_window(expired_instrument_key, interval, start, end)
            except InvalidDateRange:
                self.window_memory.record_too_long(self.host, interval, days)
                if days == 1:
                    raise
                log.info("%s-day %s window refused; halving", days, interval)
                halves = split_windows(start, end, max(1, days // 2))
                pending.extendleft((s, e, probing) for s, e in reversed(halves))
                continue
            if probing is not None:
                if frame.empty:
                    # Nothing before the first candle: the longer window was complete, the
                    # contract had simply not started trading.
                    self.window_memory.record_ok(self.host, interval, probing)
                else:
                    self.window_memory.record_too_long(self.host, interval, probing)
                    log.warning(
                        "%s-day %s window came back truncated; narrowing", probing, interval
                    )
            head: list[tuple[date, date]] = []
            if continuous and not frame.empty:
                first_day = frame["timestamp"].iloc[0].date()
                if first_day > start:
                    # A contract that trades every session is missing the window's head:
                    # truncated, or not listed yet. Asking for the head tells which.
                    served = span_days(first_day, end)
                    head = split_windows(start, first_day - timedelta(days=1), served)
            if head:
                pending.extendleft((s, e, days) for s, e in reversed(head))
            else:
                self.window_memory.record_ok(self.host, interval, days)
            frames.append(frame)
        non_empty = [f for f in frames if not f.empty]
        if not non_empty:
            return empty_candles()
        out = pd.concat(non_empty, ignore_index=True)
        return out.sort_values("timestamp", kind="stable").reset_index(drop=True)

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
            self.stats.limiter_wait_s += await self.limiter.acquire_async()
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
                        self.limiter.pause(pause, reason="429 from Upstox")
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
            body = response.json()
        except ValueError:
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
