"""The sandbox's Upstox login endpoints over real HTTP: dialog, token exchange, 03:30 deadline."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import httpx
import pytest

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.sandbox import Sandbox, SandboxConfig
from expirytrack_dagster.sandbox.login import DEMO_APP, SandboxApp, upstox_token_deadline
from expirytrack_dagster_tests.credentials.conftest import expiries_status, query_of

DIALOG = "/v2/login/authorization/dialog"
TOKEN = "/v2/login/authorization/token"


@pytest.fixture
def app(sandbox: Sandbox) -> SandboxApp:
    suffix = secrets.token_hex(4)
    return sandbox.register_app(
        f"key-{suffix}", f"secret-{suffix}", f"http://127.0.0.1:5999/cb/{suffix}"
    )


@pytest.fixture
def http(sandbox: Sandbox) -> httpx.Client:
    with httpx.Client(base_url=sandbox.base_url, verify=sandbox.ssl_context()) as client:
        yield client


def authorize(http: httpx.Client, app: SandboxApp, state: str = "s-1") -> httpx.Response:
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": app.redirect_uri,
        "state": state,
    }
    return http.get(DIALOG, params=params)


def code_for(http: httpx.Client, app: SandboxApp) -> str:
    return query_of(authorize(http, app).headers["location"])["code"]


def exchange(http: httpx.Client, app: SandboxApp, code: str, **overrides: str) -> httpx.Response:
    form = {
        "code": code,
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "redirect_uri": app.redirect_uri,
        "grant_type": "authorization_code",
        **overrides,
    }
    return http.post(TOKEN, data=form, headers={"Accept": "application/json"})


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert body["status"] == "error"
    return body["errors"][0]["errorCode"]


def test_dialog_redirects_to_the_registered_uri_with_code_and_state(
    http: httpx.Client, app: SandboxApp
) -> None:
    response = authorize(http, app, state="xyz 1/2")
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(app.redirect_uri + "?")
    query = query_of(location)
    assert query["state"] == "xyz 1/2" and len(query["code"]) >= 8


def test_dialog_refuses_a_wrong_redirect_uri_or_unknown_app(
    http: httpx.Client, app: SandboxApp
) -> None:
    wrong = SandboxApp(app.client_id, app.client_secret, "http://127.0.0.1:5055/elsewhere")
    response = authorize(http, wrong)
    assert response.status_code == 400 and error_code(response) == "UDAPI100068"
    assert "redirect_uri" in response.json()["errors"][0]["message"]
    unknown = SandboxApp("nobody", "x", app.redirect_uri)
    assert error_code(authorize(http, unknown)) == "UDAPI100068"
    bad_type = http.get(DIALOG, params={"response_type": "token", "client_id": app.client_id})
    assert bad_type.status_code == 400 and error_code(bad_type) == "UDAPI100036"


def test_exchange_returns_the_upstox_shaped_profile_and_a_working_token(
    sandbox: Sandbox, http: httpx.Client, app: SandboxApp
) -> None:
    code = code_for(http, app)
    before = datetime.now(IST)
    response = exchange(http, app, code)
    after = datetime.now(IST)
    assert response.status_code == 200
    body = response.json()
    assert "status" not in body  # Upstox sends the profile bare, not in the data envelope
    assert body["broker"] == "UPSTOX" and "NFO" in body["exchanges"]
    for name in ("email", "user_id", "user_name", "access_token", "extended_token"):
        assert isinstance(body[name], str) and body[name]
    token = body["access_token"]
    assert expiries_status(sandbox, token) == 200
    # Accepted until 03:30 IST after issue, refused from that moment.
    deadlines = {upstox_token_deadline(before), upstox_token_deadline(after)}
    registry = sandbox.state.tokens
    assert any(
        registry.is_valid(token, now=d - timedelta(seconds=1))
        and not registry.is_valid(token, now=d)
        for d in deadlines
    )


def test_sandbox_deadline_rule() -> None:
    assert upstox_token_deadline(datetime(2025, 9, 16, 20, tzinfo=IST)) == datetime(
        2025, 9, 17, 3, 30, tzinfo=IST
    )
    assert upstox_token_deadline(datetime(2025, 9, 17, 2, 30, tzinfo=IST)) == datetime(
        2025, 9, 17, 3, 30, tzinfo=IST
    )


def test_a_code_works_once(http: httpx.Client, app: SandboxApp) -> None:
    code = code_for(http, app)
    assert exchange(http, app, code).status_code == 200
    reused = exchange(http, app, code)
    assert reused.status_code == 400 and error_code(reused) == "UDAPI100057"
    assert error_code(exchange(http, app, "never-issued")) == "UDAPI100057"


def test_wrong_secret_is_refused_and_spends_the_code(http: httpx.Client, app: SandboxApp) -> None:
    code = code_for(http, app)
    wrong = exchange(http, app, code, client_secret="guess")
    assert wrong.status_code == 401 and error_code(wrong) == "UDAPI100016"
    assert error_code(exchange(http, app, code)) == "UDAPI100057"  # single use, whatever happened


def test_exchange_checks_redirect_uri_and_grant_type(http: httpx.Client, app: SandboxApp) -> None:
    code = code_for(http, app)
    assert error_code(exchange(http, app, code, redirect_uri="http://x/")) == "UDAPI100068"
    grant = exchange(http, app, code_for(http, app), grant_type="password")
    assert grant.status_code == 400 and error_code(grant) == "UDAPI100036"


def test_demo_app_is_registered_by_default_and_configurable(sandbox: Sandbox) -> None:
    assert SandboxConfig().apps == (DEMO_APP,)
    assert DEMO_APP.redirect_uri == "http://127.0.0.1:5055/upstox/callback"
    with httpx.Client(base_url=sandbox.base_url, verify=sandbox.ssl_context()) as http:
        assert authorize(http, DEMO_APP).status_code == 302


def test_login_endpoints_need_no_bearer_and_data_endpoints_still_do(
    sandbox: Sandbox, http: httpx.Client, app: SandboxApp
) -> None:
    assert authorize(http, app).status_code == 302  # no Authorization header sent
    assert expiries_status(sandbox, "not-a-token") == 401
