"""Serving the sandbox: hypercorn (HTTP/2 and HTTP/1.1 over TLS) on 127.0.0.1 in a daemon thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig
from starlette.types import Message, Receive, Scope, Send

from expirytrack_dagster.sandbox import inprocess
from expirytrack_dagster.sandbox.app import build_app
from expirytrack_dagster.sandbox.config import SandboxConfig
from expirytrack_dagster.sandbox.faults import FaultConfig
from expirytrack_dagster.sandbox.login import SandboxApp
from expirytrack_dagster.sandbox.market import SyntheticMarket
from expirytrack_dagster.sandbox.ranges import RangePolicy, SpanLimits
from expirytrack_dagster.sandbox.state import SandboxState
from expirytrack_dagster.sandbox.tls import make_tls_files
from expirytrack_dagster.sandbox.tokens import new_token

HOST = "127.0.0.1"
log = logging.getLogger(__name__)


def _quiet_tls_close(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """Drop the SSL close-notify noise of connections the server rotates; report the rest."""
    exc = context.get("exception")
    causes = getattr(exc, "exceptions", None) or [exc]
    if all(isinstance(c, ssl.SSLError) and "CLOSE_NOTIFY" in str(c) for c in causes):
        return
    loop.default_exception_handler(context)


class Sandbox:
    """One sandbox server: its address, the CA to trust, the token to use, and runtime controls.

    Use ``run_sandbox`` (or ``with Sandbox(cfg) as sb``) so the server always stops.
    """

    def __init__(self, config: SandboxConfig | None = None):
        self.config = config or SandboxConfig()
        self.state = SandboxState(self.config)
        self.access_token: str = self.config.access_token or new_token()
        self.state.tokens.add(self.access_token, plus_plan=self.config.plus_plan)
        for token in self.config.extra_tokens:  # one per simulated account, each its own windows
            self.state.tokens.add(token)
        self.port: int | None = None
        self.ca_cert_path: Path | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shutdown: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._in_process_url: str | None = None

    # ---- what clients need ----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``https://127.0.0.1:<port>``: the sandbox's stand-in for ``https://api.upstox.com``.

        In-process (``start(in_process=True)``) an ``http://….sandbox.invalid`` name that only
        ``sandbox.inprocess.transport_for`` can reach, from this process.
        """
        if self._in_process_url is not None:
            return self._in_process_url
        if self.port is None:
            raise RuntimeError("the sandbox is not running")
        return f"https://{HOST}:{self.port}"

    @property
    def market(self) -> SyntheticMarket:
        """The synthetic market the endpoints serve, for computing expected answers."""
        return self.state.market

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this sandbox's CA (pass as httpx ``verify=``)."""
        if self.ca_cert_path is None:
            raise RuntimeError("the sandbox is not running")
        return ssl.create_default_context(cafile=str(self.ca_cert_path))

    @property
    def headers(self) -> dict[str, str]:
        """Request headers with the accepted token, as an Upstox client sends them."""
        return {"Authorization": f"Bearer {self.access_token}", "Accept": "application/json"}

    # ---- runtime controls -----------------------------------------------------------------

    def add_token(
        self, token: str, expires_at: datetime | None = None, *, plus_plan: bool = True
    ) -> None:
        """Accept ``token`` too; with ``expires_at`` it answers 401 from that moment (naive = IST).

        ``plus_plan=False``: the token's user has no Upstox Plus plan, so every
        ``/v2/expired-instruments`` request with it answers 401 ``UDAPI1149``.
        """
        self.state.tokens.add(token, expires_at, plus_plan=plus_plan)

    def register_app(self, client_id: str, client_secret: str, redirect_uri: str) -> SandboxApp:
        """Accept OAuth logins through this developer app (its one registered redirect URI)."""
        app = SandboxApp(client_id, client_secret, redirect_uri)
        self.state.login.register(app)
        return app

    def remove_token(self, token: str) -> None:
        """Stop accepting ``token``."""
        self.state.tokens.remove(token)

    def set_faults(self, faults: FaultConfig) -> None:
        """Replace the fault configuration; takes effect for the next request."""
        self.state.set_faults(faults)

    def set_range(
        self, max_span_days: SpanLimits | None = None, behaviour: str | None = None
    ) -> RangePolicy:
        """Change the candle endpoint's span limits and/or range behaviour; next request on.

        ``max_span_days``: a mapping per interval (only those change) or one number for every
        intraday interval (1/3/5/15minute). ``behaviour``: ``"error"``, ``"keep_recent"`` or
        ``"keep_earliest"`` (``"truncate"`` = keep_recent). None leaves a setting as it is.
        Returns the policy now in force. Thread-safe; a request in flight keeps the old one.
        """
        return self.state.set_range(max_span_days, behaviour)

    @property
    def range_policy(self) -> RangePolicy:
        """The span limits and range behaviour in force now."""
        return self.state.ranges

    def truth_contract_keys(self, symbol: str, expiry: date) -> list[str]:
        """Sorted expired instrument keys of every contract (options and future) of the expiry."""
        return self.state.market.truth_contract_keys(symbol, expiry)

    def truth_candles(
        self,
        symbol: str,
        expiry: date,
        interval: str = "1minute",
        from_date: date | None = None,
        to_date: date | None = None,
    ) -> pd.DataFrame:
        """Ground truth for the expiry: every candle of every contract, from the market model.

        Columns ``expired_instrument_key, timestamp`` (tz-aware Asia/Kolkata) ``, open, high,
        low, close`` (float64 rupees) ``, volume, open_interest`` (int64), sorted by key then
        timestamp. Dates inclusive; None means each contract's whole life (up to the market's
        ``today``). No HTTP, span limit or fault is involved, nor the client's parsing code.
        A full NIFTY monthly (195 contracts, ~3.2 million candles) takes about 8-10 s.
        """
        return self.state.market.truth_candles(symbol, expiry, interval, from_date, to_date)

    def set_today(self, today: date) -> None:
        """Move the market's clock (which expiries are listed, the last day with candles)."""
        self.state.market.set_today(today)

    def stats(self) -> dict[str, Any]:
        """A snapshot of the request counters (see ``RequestStats.snapshot``)."""
        return self.state.stats.snapshot()

    def reset_stats(self) -> None:
        """Zero the request counters."""
        self.state.stats.reset()

    def reset_rate_limits(self) -> None:
        """Forget past requests in every token's rate windows."""
        self.state.limiter.reset()

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self, timeout: float = 30.0, *, in_process: bool = False) -> Sandbox:
        """Start serving in a daemon thread and return once the server accepts requests.

        ``in_process=True``: no server, socket or TLS; clients in this process reach the same app
        through ``sandbox.inprocess.transport_for(base_url)`` (fast, for tests and the embedded
        sandbox). HTTP/2, TLS, connection rotation and stream resets need the served one.
        """
        if self._thread is not None or self._in_process_url is not None:
            raise RuntimeError("the sandbox is already running")
        if in_process:
            self.state.market.warm_up()
            self._in_process_url = inprocess.register(build_app(self.state))
            return self
        self._ready.clear()
        self._error = None
        self.state.market.warm_up()
        self._tmp = tempfile.TemporaryDirectory(prefix="expirytrack-sandbox-")
        tls = make_tls_files(Path(self._tmp.name))
        self.ca_cert_path = tls.ca_cert
        # Bind here, not in hypercorn, so port 0 yields the real port with no pick-then-bind race.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((HOST, self.config.port))
            sock.listen(1024)
        except OSError:
            sock.close()
            self._tmp.cleanup()
            raise
        self.port = sock.getsockname()[1]

        config = HypercornConfig()
        config.bind = [f"fd://{sock.detach()}"]
        config.certfile = str(tls.cert)
        config.keyfile = str(tls.key)
        config.alpn_protocols = ["h2", "http/1.1"]
        config.accesslog = None
        config.errorlog = logging.getLogger("expirytrack_dagster.sandbox.hypercorn")
        config.graceful_timeout = 1.0
        config.include_server_header = False
        config.keep_alive_max_requests = self.config.requests_per_connection

        app = _ReadySignal(build_app(self.state), self._ready)
        self._thread = threading.Thread(
            target=self._serve, args=(app, config), name=f"sandbox-{self.port}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            self.stop()
            raise RuntimeError(f"the sandbox did not start: {self._error!r}")
        return self

    def _serve(self, app: _ReadySignal, config: HypercornConfig) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(_quiet_tls_close)
        self._loop = loop
        self._shutdown = asyncio.Event()
        try:
            loop.run_until_complete(
                serve(app, config, shutdown_trigger=self._shutdown.wait, mode="asgi")  # type: ignore[arg-type]
            )
        except BaseException as exc:  # reported to start(); the thread must not die silently
            self._error = exc
            log.exception("sandbox server failed")
        finally:
            self._ready.set()
            loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and delete the TLS files. Safe to call twice."""
        if self._in_process_url is not None:
            inprocess.unregister(self._in_process_url)
            self._in_process_url = None
        thread, loop, shutdown = self._thread, self._loop, self._shutdown
        if thread is not None:
            if loop is not None and shutdown is not None and not loop.is_closed():
                # RuntimeError: the loop closed in between, so the server is gone already.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(shutdown.set)
            thread.join(timeout)
            self._thread = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _ReadySignal:
    """Sets ``ready`` once the app finished its lifespan start-up, i.e. hypercorn is serving."""

    def __init__(self, app: Any, ready: threading.Event):
        self.app = app
        self.ready = ready

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_and_signal(message: Message) -> None:
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                self.ready.set()

        await self.app(scope, receive, send_and_signal)


@contextmanager
def run_sandbox(
    config: SandboxConfig | None = None, *, in_process: bool = False
) -> Iterator[Sandbox]:
    """A running sandbox for the ``with`` block; stopped (and its files removed) on exit.

    ``in_process=True`` serves it without a socket (see ``Sandbox.start``).
    """
    sandbox = Sandbox(config)
    sandbox.start(in_process=in_process)
    try:
        yield sandbox
    finally:
        sandbox.stop()
