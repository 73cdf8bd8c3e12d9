"""The loopback callback server and the whole OAuth flow against the sandbox, browser-style."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

import httpx
import pytest

from expirytrack_dagster.credentials.oauth import (
    DEFAULT_REDIRECT_URI,
    CallbackServer,
    LoginError,
    authorization_url,
    exchange_code,
    login_with_browser,
    parse_redirect_uri,
)
from expirytrack_dagster.credentials.store import AppCredentials, CredentialStore
from expirytrack_dagster.sandbox import Sandbox
from expirytrack_dagster_tests.credentials.conftest import (
    LoginThread,
    browse,
    expiries_status,
    query_of,
)

ANY_PORT = "http://127.0.0.1:0/upstox/callback"


def new_app(sandbox: Sandbox, redirect_uri: str) -> AppCredentials:
    key, secret = f"key-{secrets.token_hex(4)}", f"secret-{secrets.token_hex(8)}"
    sandbox.register_app(key, secret, redirect_uri)
    return AppCredentials(key, secret, redirect_uri)


def start_login(sandbox: Sandbox, app: AppCredentials, timeout_s: float = 20.0) -> LoginThread:
    return LoginThread(
        lambda show: login_with_browser(
            app,
            show_url=show,
            open_browser=False,
            base_url=sandbox.base_url,
            verify=sandbox.ssl_context(),
            timeout_s=timeout_s,
        )
    ).start()


def free_redirect_uri() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/upstox/callback"


def test_defaults_are_documented_values() -> None:
    assert DEFAULT_REDIRECT_URI == "http://127.0.0.1:5055/upstox/callback"
    assert parse_redirect_uri(DEFAULT_REDIRECT_URI) == (5055, "/upstox/callback")
    url = authorization_url("KEY", DEFAULT_REDIRECT_URI, "st8")
    assert url.startswith("https://api.upstox.com/v2/login/authorization/dialog?")
    assert query_of(url) == {
        "response_type": "code",
        "client_id": "KEY",
        "redirect_uri": DEFAULT_REDIRECT_URI,
        "state": "st8",
    }


@pytest.mark.parametrize(
    "uri",
    [
        "https://127.0.0.1:5055/cb",
        "http://0.0.0.0:5055/cb",
        "http://example.com:5055/cb",
        "http://127.0.0.1/cb",
    ],
)
def test_only_loopback_http_redirect_uris(uri: str) -> None:
    with pytest.raises(LoginError):
        parse_redirect_uri(uri)


def outward_address() -> str | None:
    """This machine's address on its default route (no packet is sent), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 9))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_callback_server_listens_on_loopback_only() -> None:
    with CallbackServer(ANY_PORT, "state") as server:
        host, port = server.address  # the bound socket's own name
        assert host == "127.0.0.1" and port > 0
        assert server.redirect_uri == f"http://127.0.0.1:{port}/upstox/callback"
        assert httpx.get(server.redirect_uri.replace("callback", "x")).status_code == 404
        outward = outward_address()
        if outward is not None:  # reachable on loopback, refused on the machine's real address
            with pytest.raises(OSError), socket.create_connection((outward, port), timeout=2):
                pass


def test_wrong_state_is_refused_and_the_wait_goes_on() -> None:
    with CallbackServer(ANY_PORT, "the-real-state") as server:
        stray = httpx.get(server.redirect_uri.replace("/upstox/callback", "/favicon.ico"))
        assert stray.status_code == 404  # not the callback: the wait goes on
        forged = httpx.get(server.redirect_uri, params={"code": "c0de", "state": "forged"})
        assert forged.status_code == 400 and "state" in forged.text
        no_state = httpx.get(server.redirect_uri, params={"code": "c0de"})
        assert no_state.status_code == 400
        denied = httpx.get(server.redirect_uri, params={"error": "access_denied", "state": "x"})
        assert denied.status_code == 400
        assert server.refused == 3
        real = httpx.get(server.redirect_uri, params={"code": "real", "state": "the-real-state"})
        assert real.status_code == 200
        assert server.wait(5) == "real"  # the forged requests did not end the login
        again = httpx.get(server.redirect_uri, params={"code": "c", "state": "the-real-state"})
        assert again.status_code == 404  # one callback only


def test_only_forged_requests_time_out_saying_so() -> None:
    with CallbackServer(ANY_PORT, "s") as server:
        assert httpx.get(server.redirect_uri, params={"code": "c"}).status_code == 400
        with pytest.raises(LoginError, match=r"1 request with a wrong state.*refused"):
            server.wait(0.3)


def test_forged_callback_does_not_abort_a_real_browser_login(sandbox: Sandbox) -> None:
    app = new_app(sandbox, free_redirect_uri())
    flow = start_login(sandbox, app)
    url = flow.url()
    forged = httpx.get(app.redirect_uri, params={"code": "attacker-code", "state": "guess"})
    assert forged.status_code == 400
    assert browse(sandbox, url).status_code == 200
    token = flow.join()
    assert flow.error is None and expiries_status(sandbox, token.access_token) == 200


def test_denied_login() -> None:
    with CallbackServer(ANY_PORT, "s") as server:
        httpx.get(server.redirect_uri, params={"error": "access_denied", "state": "s"})
        with pytest.raises(LoginError, match=r"did not authorize.*access_denied"):
            server.wait(5)


def test_callback_never_logs_the_code(capfd: pytest.CaptureFixture[str]) -> None:
    with CallbackServer(ANY_PORT, "s") as server:
        httpx.get(server.redirect_uri, params={"code": "SECRETCODE123", "state": "s"})
        assert server.wait(5) == "SECRETCODE123"
    captured = capfd.readouterr()
    assert "SECRETCODE123" not in captured.out + captured.err


def test_busy_port_is_a_clear_error() -> None:
    with (
        CallbackServer(ANY_PORT, "s") as first,
        pytest.raises(LoginError, match=r"cannot listen on 127\.0\.0\.1:.*--redirect-uri"),
    ):
        CallbackServer(first.redirect_uri, "s")


def test_browser_login_end_to_end(sandbox: Sandbox, creds_dir: Path) -> None:
    app = new_app(sandbox, free_redirect_uri())
    flow = start_login(sandbox, app)
    url = flow.url()
    assert url.startswith(f"{sandbox.base_url}/v2/login/authorization/dialog?")
    assert query_of(url)["redirect_uri"] == app.redirect_uri
    callback = browse(sandbox, url)
    assert callback.status_code == 200 and "Return to the terminal" in callback.text
    token = flow.join()
    assert flow.error is None
    CredentialStore().save_token(token)

    stored = CredentialStore().load().token
    assert stored == token and stored.kind == "access"
    assert stored.user_id == "SANDBX" and stored.base_url == sandbox.base_url
    assert stored.expires_at is not None and stored.expires_at.strftime("%H:%M") == "03:30"
    assert expiries_status(sandbox, stored.access_token) == 200


def test_browser_closed_times_out_clearly(sandbox: Sandbox) -> None:
    app = new_app(sandbox, ANY_PORT)
    flow = start_login(sandbox, app, timeout_s=0.5)
    flow.url()  # shown, but nobody opens it
    flow.join()
    assert isinstance(flow.error, LoginError)
    message = str(flow.error)
    assert "browser was closed" in message and "UDAPI100068" in message
    assert "expirytrack login" in message


def test_wrong_redirect_uri_stops_at_the_dialog_with_a_clear_hint(sandbox: Sandbox) -> None:
    registered = new_app(sandbox, "http://127.0.0.1:5999/registered/elsewhere")
    app = AppCredentials(registered.api_key, registered.api_secret, ANY_PORT)
    flow = start_login(sandbox, app, timeout_s=1.0)
    page = browse(sandbox, flow.url())
    assert page.status_code == 400 and page.json()["errors"][0]["errorCode"] == "UDAPI100068"
    flow.join()
    assert isinstance(flow.error, LoginError)
    assert "register exactly http://127.0.0.1:" in str(flow.error)


def test_reused_code_is_explained(sandbox: Sandbox) -> None:
    app = new_app(sandbox, free_redirect_uri())
    flow = start_login(sandbox, app)

    def use_first(code: str) -> None:
        exchange_code(code, app, base_url=sandbox.base_url, verify=sandbox.ssl_context())

    browse(sandbox, flow.url(), steal_code=use_first)
    flow.join()
    assert isinstance(flow.error, LoginError)
    message = str(flow.error)
    assert "UDAPI100057" in message and "works once" in message


def test_wrong_secret_is_explained(sandbox: Sandbox) -> None:
    app = new_app(sandbox, free_redirect_uri())
    wrong = AppCredentials(app.api_key, "not-the-secret", app.redirect_uri)
    flow = start_login(sandbox, wrong)
    browse(sandbox, flow.url())
    flow.join()
    assert isinstance(flow.error, LoginError)
    message = str(flow.error)
    assert "UDAPI100016" in message and "--reset-app" in message
    assert "not-the-secret" not in message


def test_unreachable_token_endpoint(sandbox: Sandbox) -> None:
    app = AppCredentials("k", "s", DEFAULT_REDIRECT_URI)
    with pytest.raises(LoginError, match="cannot reach"):
        exchange_code("c", app, base_url="https://127.0.0.1:9", timeout_s=2)
