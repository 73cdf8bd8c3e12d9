"""The sandbox's Upstox login: an auto-approving authorization dialog and the code-for-token endpoint.

Shaped like Upstox's ``/v2/login/authorization/dialog`` and ``/v2/login/authorization/token``:
the dialog checks ``client_id`` and ``redirect_uri`` against the registered apps and redirects to
``redirect_uri?code=…&state=…`` (there is no user to ask, so it approves at once); the token
endpoint spends the code (single use, whatever the outcome, as Upstox documents) and issues an
access token the data endpoints accept until 03:30 IST after issue, answering 401 from then on.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.sandbox import responses as r
from expirytrack_dagster.sandbox.tokens import TokenRegistry, new_token

LOGIN_PREFIX = "/v2/login/"
CODE_LIFETIME = timedelta(minutes=10)
EXTENDED_TOKEN_LIFETIME = timedelta(days=365)

# Upstox documents UDAPI100068 (dialog) and UDAPI100016 (credentials); it does not document the
# code for a spent or unknown authorization code, so the sandbox names it plainly.
WRONG_APP = (
    400,
    "UDAPI100068",
    "Check your 'client_id' and 'redirect_uri'; one or both are incorrect.",
)
BAD_CREDENTIALS = (401, "UDAPI100016", "Invalid Credentials")
BAD_CODE = (400, "UDAPI100057", "Invalid Auth code")


@dataclass(frozen=True)
class SandboxApp:
    """A developer app registered with the sandbox: API key, secret and its one redirect URI."""

    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str


DEMO_APP = SandboxApp(
    client_id="expirytrack-sandbox-app",
    client_secret="expirytrack-sandbox-secret",
    redirect_uri="http://127.0.0.1:5055/upstox/callback",
)
"""Registered in every sandbox by default: ``expirytrack login`` against it works out of the box."""

SANDBOX_USER = {
    "email": "sandbox.user@example.com",
    "exchanges": ["NSE", "NFO", "BSE", "CDS", "BFO", "BCD"],
    "products": ["D", "CO", "I"],
    "broker": "UPSTOX",
    "user_id": "SANDBX",
    "user_name": "Sandbox User (synthetic)",
    "order_types": ["MARKET", "LIMIT", "SL", "SL-M"],
    "user_type": "individual",
    "poa": False,
    "is_active": True,
}


def upstox_token_deadline(issued_at: datetime) -> datetime:
    """03:30 IST after ``issued_at``: the same day before 03:30, the next day from 03:30 on."""
    local = issued_at.astimezone(IST)
    deadline = datetime.combine(local.date(), time(3, 30), tzinfo=IST)
    return deadline if local < deadline else deadline + timedelta(days=1)


@dataclass(frozen=True)
class _PendingCode:
    client_id: str
    redirect_uri: str
    expires_at: datetime


class SandboxLogin:
    """Registered apps and outstanding authorization codes; thread-safe."""

    def __init__(
        self,
        tokens: TokenRegistry,
        apps: Iterable[SandboxApp] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(IST),
    ) -> None:
        self.tokens = tokens
        self.clock = clock
        self._apps = {app.client_id: app for app in apps}
        self._codes: dict[str, _PendingCode] = {}
        self._lock = threading.Lock()

    def register(self, app: SandboxApp) -> None:
        """Accept logins through ``app`` (replacing an app with the same client_id)."""
        with self._lock:
            self._apps[app.client_id] = app

    def _app(self, client_id: str | None) -> SandboxApp | None:
        with self._lock:
            return self._apps.get(client_id or "")

    def authorize(self, client_id: str | None, redirect_uri: str | None, state: str | None) -> str:
        """The redirect location carrying a fresh code; ``ApiError`` for an unknown app or URI."""
        app = self._app(client_id)
        if app is None or redirect_uri != app.redirect_uri:
            raise r.ApiError(*WRONG_APP)
        code = secrets.token_urlsafe(12)
        with self._lock:
            self._codes[code] = _PendingCode(
                app.client_id, app.redirect_uri, self.clock() + CODE_LIFETIME
            )
        query = {"code": code, **({"state": state} if state is not None else {})}
        separator = "&" if "?" in app.redirect_uri else "?"
        return f"{app.redirect_uri}{separator}{urlencode(query)}"

    def exchange(self, form: dict[str, str]) -> dict[str, object]:
        """The token answer for a valid form; ``ApiError`` for anything Upstox would refuse."""
        if form.get("grant_type") != "authorization_code":
            raise r.ApiError(
                400, r.INVALID_INPUT_CODE, "Invalid Input", "grant_type", form.get("grant_type")
            )
        with self._lock:
            pending = self._codes.pop(form.get("code", ""), None)  # spent whatever follows
        app = self._app(form.get("client_id"))
        secret = form.get("client_secret", "")
        if app is None or not secrets.compare_digest(secret.encode(), app.client_secret.encode()):
            raise r.ApiError(*BAD_CREDENTIALS)
        now = self.clock()
        if pending is None or pending.client_id != app.client_id or now >= pending.expires_at:
            raise r.ApiError(*BAD_CODE, "code")
        if form.get("redirect_uri") != pending.redirect_uri:
            raise r.ApiError(*WRONG_APP)
        access_token, extended_token = new_token(), new_token()
        self.tokens.add(access_token, upstox_token_deadline(now))
        self.tokens.add(extended_token, now + EXTENDED_TOKEN_LIFETIME)
        return {**SANDBOX_USER, "access_token": access_token, "extended_token": extended_token}

    def routes(self) -> list[Route]:
        """The dialog (GET) and token (POST) routes, to mount in the sandbox app."""

        async def dialog(request: Request) -> Response:
            query = request.query_params
            if query.get("response_type") != "code":
                raise r.ApiError(
                    400,
                    r.INVALID_INPUT_CODE,
                    "Invalid Input",
                    "response_type",
                    query.get("response_type"),
                )
            location = self.authorize(
                query.get("client_id"), query.get("redirect_uri"), query.get("state")
            )
            return RedirectResponse(location, status_code=302)

        async def token(request: Request) -> Response:
            # Parsed by hand: starlette's form parser needs python-multipart, not a dependency.
            form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
            return JSONResponse(self.exchange(form))

        return [
            Route(f"{LOGIN_PREFIX}authorization/dialog", dialog, methods=["GET"]),
            Route(f"{LOGIN_PREFIX}authorization/token", token, methods=["POST"]),
        ]
