"""The Upstox OAuth code flow: dialog URL, a one-shot loopback callback server, the code exchange.

The callback server listens on 127.0.0.1 only, by default at ``DEFAULT_REDIRECT_URI``
(``http://127.0.0.1:5055/upstox/callback``), which must be registered as the app's redirect URI
at https://account.upstox.com/developer/apps. It answers one callback, checks ``state`` in
constant time, and never logs the request line (it carries the authorization code). A request
with a wrong or missing ``state`` (a stale tab, a forged link) gets 400 and is otherwise ignored:
the wait for the real callback goes on.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import ssl
import sys
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from html import escape
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.credentials.deadline import token_deadline
from expirytrack_dagster.credentials.store import AppCredentials, StoredToken
from expirytrack_dagster.upstox.client import UPSTOX_BASE_URL
from expirytrack_dagster.upstox.errors import error_envelope

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 5055
DEFAULT_CALLBACK_PATH = "/upstox/callback"
DEFAULT_REDIRECT_URI = f"http://{LOOPBACK}:{DEFAULT_PORT}{DEFAULT_CALLBACK_PATH}"
DEFAULT_TIMEOUT_S = 300.0
"""Five minutes: long enough to type a password, a TOTP and a PIN on the Upstox page."""
DIALOG_PATH = "/v2/login/authorization/dialog"
TOKEN_PATH = "/v2/login/authorization/token"
APPS_PAGE = "https://account.upstox.com/developer/apps"


class LoginError(Exception):
    """The login did not produce a token; the message says why and what to do (no secrets)."""


def authorization_url(
    api_key: str, redirect_uri: str, state: str, base_url: str = UPSTOX_BASE_URL
) -> str:
    """The Upstox login dialog for ``api_key``, returning to ``redirect_uri`` with ``state``."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": api_key,
            "redirect_uri": redirect_uri,
            "state": state,
        }
    )
    return f"{base_url.rstrip('/')}{DIALOG_PATH}?{query}"


def parse_redirect_uri(redirect_uri: str) -> tuple[int, str]:
    """(port, path) of a loopback redirect URI; ``LoginError`` for anything not served locally."""
    parts = urlsplit(redirect_uri)
    if parts.scheme != "http" or parts.hostname not in (LOOPBACK, "localhost"):
        raise LoginError(
            f"the redirect URI {redirect_uri!r} is not a loopback http:// address: use "
            f"{DEFAULT_REDIRECT_URI} (or another port on 127.0.0.1) and register it for your app"
        )
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        raise LoginError(f"the redirect URI {redirect_uri!r} needs an explicit port, e.g. :5055")
    return port, parts.path or "/"


@dataclass
class _Callback:
    """What the one callback brought: a code, or the reason there is none."""

    code: str | None = None
    error: str | None = None


def _page(title: str, text: str) -> bytes:
    return (
        "<!doctype html><meta charset=utf-8><title>ExpiryTrack login</title>"
        f"<h1>{escape(title)}</h1><p>{escape(text)}</p>"
    ).encode()


class CallbackServer:
    """An HTTP server on 127.0.0.1 that waits for the one OAuth redirect carrying ``state``.

    ``with CallbackServer(redirect_uri, state) as server: code = server.wait(timeout_s)``.
    A redirect URI with port 0 binds any free port (tests); ``redirect_uri`` then names it.
    """

    def __init__(self, redirect_uri: str, state: str) -> None:
        port, self.path = parse_redirect_uri(redirect_uri)
        self._state = state
        self._result = _Callback()
        self._done = threading.Event()
        self.refused = 0
        """How many requests to the callback path carried a wrong or missing ``state``."""
        handler = self._handler_class()
        try:
            self._http = HTTPServer((LOOPBACK, port), handler)
        except OSError as exc:
            raise LoginError(
                f"cannot listen on {LOOPBACK}:{port} ({exc.strerror or exc}): is another "
                "`expirytrack login` running? Free the port, or register another redirect URI "
                "and pass it with --redirect-uri"
            ) from None
        host, bound = self._http.server_address[:2]
        self.redirect_uri = redirect_uri  # verbatim: Upstox compares it with the registered one
        if port == 0:
            parts = urlsplit(redirect_uri)
            netloc = f"{parts.hostname}:{bound}"
            self.redirect_uri = urlunsplit((parts.scheme, netloc, self.path, parts.query, ""))
        self.address = (str(host), int(bound))
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10  # a stalled connection must not block the real callback behind it

            def log_message(self, format: str, *args: Any) -> None:
                """Silent: the default writes the request line, code and all, to stderr."""

            def do_GET(self) -> None:
                status, title, text = server._handle(self.path)
                body = _page(title, text)
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("Referrer-Policy", "no-referrer")
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def _handle(self, raw_path: str) -> tuple[int, str, str]:
        parts = urlsplit(raw_path)
        if parts.path != self.path or self._done.is_set():
            # Favicons, stray tabs, a second redirect: none of them ends the wait.
            return 404, "Not found", "This is not the ExpiryTrack login callback."
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        state = query.get("state", "")
        if not secrets.compare_digest(state.encode(), self._state.encode()):
            # Not this login's redirect (a stale tab, a forged link): refuse it, keep waiting.
            self.refused += 1
            return 400, "Login rejected", "The state check failed. Nothing was stored."
        if "error" in query:
            reason = query.get("error_description") or query["error"]
            self._finish(error=f"Upstox did not authorize the login: {reason}")
            return 400, "Login refused", "Upstox did not authorize the login. See the terminal."
        if not query.get("code"):
            self._finish(error="the callback carried no authorization code")
            return 400, "Login failed", "No authorization code arrived. See the terminal."
        self._finish(code=query["code"])
        return 200, "Logged in", "ExpiryTrack received the authorization. Return to the terminal."

    def _finish(self, *, code: str | None = None, error: str | None = None) -> None:
        self._result = _Callback(code=code, error=error)
        self._done.set()

    def __enter__(self) -> CallbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop listening; safe to call twice."""
        if self._thread.is_alive():
            self._http.shutdown()
            self._thread.join()
        self._http.server_close()

    def wait(self, timeout_s: float) -> str:
        """The authorization code, once the browser comes back; ``LoginError`` otherwise."""
        if not self._done.wait(timeout_s):
            refused = ""
            if self.refused:
                requests = "1 request" if self.refused == 1 else f"{self.refused} requests"
                refused = f" ({requests} with a wrong state, a stale tab or a forged link, refused)"
            raise LoginError(
                f"no login came back to {self.redirect_uri} within {timeout_s:.0f}s{refused}: "
                "the browser was closed or the login was not finished. If the Upstox page showed "
                "UDAPI100068 ('Check your client_id and redirect_uri'), register exactly "
                f"{self.redirect_uri} as your app's redirect URI at {APPS_PAGE} (or pass the "
                "registered one with --redirect-uri). Then run `expirytrack login` again."
            )
        if self._result.error:
            raise LoginError(self._result.error)
        assert self._result.code is not None
        return self._result.code


def _exchange_failure(response: httpx.Response, app: AppCredentials) -> LoginError:
    code, message = error_envelope(response)
    said = f"Upstox refused the login ({code or f'HTTP {response.status_code}'}: {message})"
    lowered = message.lower()
    if code == "UDAPI100068" or "redirect" in lowered:
        fix = (
            f"the redirect URI {app.redirect_uri} must be exactly the one registered for API key "
            f"{app.api_key} at {APPS_PAGE}; register it, or pass the registered one with "
            "--redirect-uri"
        )
    elif "code" in lowered:
        fix = (
            "an authorization code works once and only for minutes (a reloaded page or a second "
            "exchange uses it up): run `expirytrack login` again"
        )
    elif code == "UDAPI100016" or response.status_code == 401:
        fix = (
            "the API key or secret is wrong: run `expirytrack login --reset-app` and enter them "
            f"again from {APPS_PAGE}"
        )
    else:
        fix = "run `expirytrack login` again"
    return LoginError(f"{said}: {fix}")


def exchange_code(
    code: str,
    app: AppCredentials,
    *,
    base_url: str = UPSTOX_BASE_URL,
    verify: ssl.SSLContext | bool = True,
    timeout_s: float = 30.0,
) -> dict[str, Any]:
    """Trade an authorization code for the token endpoint's answer (profile and tokens)."""
    try:
        response = httpx.post(
            f"{base_url.rstrip('/')}{TOKEN_PATH}",
            data={
                "code": code,
                "client_id": app.api_key,
                "client_secret": app.api_secret,
                "redirect_uri": app.redirect_uri,
                "grant_type": "authorization_code",
            },
            headers={"Accept": "application/json"},
            verify=verify,
            timeout=timeout_s,
        )
    except httpx.HTTPError as exc:
        raise LoginError(
            f"cannot reach {base_url} to finish the login ({type(exc).__name__}); check the "
            "network and run `expirytrack login` again"
        ) from None
    if response.status_code != 200:
        raise _exchange_failure(response, app)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise LoginError("the token endpoint answered without an access_token; nothing was stored")
    return body


def browser_available() -> bool:
    """True when opening a browser can work: not over SSH, and a display on Linux/BSD."""
    if os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_TTY"):
        return False
    if sys.platform.startswith(("linux", "freebsd", "openbsd")):
        # Without a display, webbrowser would start a text browser inside this terminal.
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def login_with_browser(
    app: AppCredentials,
    *,
    show_url: Callable[[str], None],
    open_browser: bool = True,
    base_url: str = UPSTOX_BASE_URL,
    verify: ssl.SSLContext | bool = True,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> StoredToken:
    """Run the whole code flow and return the token to store (the caller stores it).

    ``show_url`` receives the dialog URL (print it; tests follow it like a browser).
    """
    state = secrets.token_urlsafe(32)
    with CallbackServer(app.redirect_uri, state) as server:
        url = authorization_url(app.api_key, server.redirect_uri, state, base_url)
        show_url(url)
        if open_browser and browser_available():
            with contextlib.suppress(webbrowser.Error):  # the printed URL is the fallback
                webbrowser.open(url, new=2)
        code = server.wait(timeout_s)
        app = replace(app, redirect_uri=server.redirect_uri)
    body = exchange_code(code, app, base_url=base_url, verify=verify)
    issued = datetime.now(IST)
    token = body["access_token"]
    return StoredToken(
        access_token=token,
        kind="access",
        obtained_at=issued,
        issued_at=issued,
        expires_at=token_deadline(token, "access", issued, issued),
        user_id=body.get("user_id"),
        user_name=body.get("user_name"),
        email=body.get("email"),
        base_url=base_url.rstrip("/"),
    )
