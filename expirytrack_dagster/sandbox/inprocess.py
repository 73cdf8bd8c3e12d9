"""The sandbox served in-process: its ASGI app behind an httpx transport, with no socket or TLS.

A sandbox started with ``Sandbox.start(in_process=True)`` gets an address such as
``http://sb-1a2b3c4d.sandbox.invalid`` (``.invalid`` is reserved: it never resolves, so a
request that misses this registry cannot reach any real host). ``transport_for`` turns that
address back into an ``httpx.ASGITransport`` calling the same app, state and counters the
threaded server would, in the caller's own event loop. The Upstox client is unchanged: it gets
the transport through its ``transport=`` argument.

What only a real server can show stays with the real server: HTTP/2 framing, TLS, connection
rotation and stream resets. A dropped request here surfaces as the ``httpx.ReadError`` a reset
gives the client.
"""

from __future__ import annotations

import logging
import secrets
import threading

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

IN_PROCESS_HOST_SUFFIX = ".sandbox.invalid"
IN_PROCESS_SCOPE_KEY = "expirytrack.in_process"
"""Set in the ASGI scope of every in-process request (the drop fault reads it)."""

log = logging.getLogger(__name__)
_apps: dict[str, ASGIApp] = {}
_lock = threading.Lock()


class DroppedRequest(Exception):
    """Raised by the app to drop an in-process request; the transport makes it a ReadError."""


class _InProcessTransport(httpx.ASGITransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except DroppedRequest as exc:
            raise httpx.ReadError("the sandbox dropped the request", request=request) from exc


class _AsServed:
    """Marks the scope as in-process and answers an app crash with a 500, as a server would."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app({**scope, IN_PROCESS_SCOPE_KEY: True}, receive, tracked)
        except DroppedRequest:
            raise
        except Exception:
            log.exception("sandbox app failed")
            if not started:
                await send({"type": "http.response.start", "status": 500, "headers": []})
                await send({"type": "http.response.body", "body": b"Internal Server Error"})


def register(app: ASGIApp) -> str:
    """Serve ``app`` in-process; returns the base URL that names it."""
    name = f"sb-{secrets.token_hex(4)}"
    with _lock:
        _apps[name] = _AsServed(app)
    return f"http://{name}{IN_PROCESS_HOST_SUFFIX}"


def unregister(base_url: str) -> None:
    """Stop serving the app behind ``base_url`` (no error if it is gone already)."""
    with _lock:
        _apps.pop(_name(base_url), None)


def is_in_process(base_url: str | None) -> bool:
    """True for an address ``register`` handed out (served or not)."""
    return bool(base_url and _name(base_url))


def transport_for(base_url: str) -> httpx.AsyncBaseTransport:
    """The transport that calls the in-process sandbox at ``base_url``.

    Raises ``LookupError`` naming the address when that sandbox is not running in this process
    (an in-process sandbox cannot be reached from another process: start a served one there).
    """
    with _lock:
        app = _apps.get(_name(base_url))
    if app is None:
        raise LookupError(
            f"no in-process sandbox at {base_url} in this process; it was stopped, or it runs "
            "in another process (use a served sandbox, `python -m expirytrack_dagster.sandbox`)"
        )
    return _InProcessTransport(app=app, raise_app_exceptions=True)


def _name(base_url: str) -> str:
    host = httpx.URL(base_url).host
    return host[: -len(IN_PROCESS_HOST_SUFFIX)] if host.endswith(IN_PROCESS_HOST_SUFFIX) else ""
