"""``expirytrack login / logout / status`` end to end: real store files, real sandbox, no secret shown."""

from __future__ import annotations

import base64
import io
import json
import re
import socket
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.cli import main
from expirytrack_dagster.credentials.store import CredentialStore
from expirytrack_dagster.sandbox import Sandbox
from expirytrack_dagster.upstox.client import token_fingerprint
from expirytrack_dagster_tests.credentials.conftest import browse, expiries_status

PASTED = "pasted-token-0123456789abcdef"
API_SECRET = "cli-test-secret-value"


def run(
    capsys: pytest.CaptureFixture[str], *argv: str, stdin: str | None = None
) -> tuple[int, str, str]:
    with pytest.MonkeyPatch.context() as patch:
        if stdin is not None:
            patch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def jwt_expiring(at: datetime) -> str:
    payload = base64.urlsafe_b64encode(json.dumps({"exp": int(at.timestamp())}).encode())
    return f"eyJhbGciOiJIUzI1NiJ9.{payload.decode().rstrip('=')}.c2ln"


def test_pasted_token_status_and_logout(
    capsys: pytest.CaptureFixture[str], creds_dir: Path
) -> None:
    code, out, err = run(capsys, "login", "--token", stdin=PASTED + "\n")
    assert code == 0, err
    assert token_fingerprint(PASTED) in out and PASTED not in out + err
    assert "03:30 IST" in out and str(creds_dir) in out

    code, out, _ = run(capsys, "status", "--margin-minutes", "0")
    assert code == 0
    assert "source  : stored login" in out and "03:30 IST" in out and " in " in out
    assert "(assumed" not in out and "ready   : yes" in out and PASTED not in out

    code, out, _ = run(capsys, "logout")
    assert code == 0 and "stored token is gone" in out
    code, out, _ = run(capsys, "status")
    assert code == 1 and "none (not logged in)" in out and "expirytrack login" in out


def test_analytics_token_with_its_own_expiry(capsys: pytest.CaptureFixture[str]) -> None:
    token = jwt_expiring(datetime.now(IST) + timedelta(days=300))
    code, out, _ = run(capsys, "login", "--token", "--kind", "analytics", stdin=token)
    assert code == 0 and "in 29" in out  # ~300 days, from the token's own exp
    code, out, _ = run(capsys, "status")
    assert code == 0 and "analytics token" in out and token not in out


def test_dead_token_status(capsys: pytest.CaptureFixture[str]) -> None:
    token = jwt_expiring(datetime.now(IST) - timedelta(hours=2))
    run(capsys, "login", "--token", stdin=token)
    code, out, _ = run(capsys, "status")
    assert code == 1 and "expired" in out and "ready   : no" in out and "expirytrack login" in out


def test_environment_wins_and_is_named(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run(capsys, "login", "--token", stdin=PASTED)
    monkeypatch.setenv("UPSTOX_ACCESS_TOKEN", "environment-token-value")
    code, out, _ = run(capsys, "status", "--margin-minutes", "0")
    assert code == 0
    assert "environment variable UPSTOX_ACCESS_TOKEN (wins over the store)" in out
    assert "(assumed: issue time unknown)" in out
    assert token_fingerprint("environment-token-value") in out
    assert "environment-token-value" not in out and PASTED not in out
    code, out, _ = run(capsys, "logout")
    assert "still set" in out


def test_bad_input_and_damaged_store(capsys: pytest.CaptureFixture[str], creds_dir: Path) -> None:
    code, _, err = run(capsys, "login", "--token", stdin="   \n")
    assert code == 2 and "no token" in err
    run(capsys, "login", "--token", stdin=PASTED)
    store = CredentialStore()
    store.path.write_bytes(store.path.read_bytes()[:-3] + b"AAA")
    code, out, err = run(capsys, "login", "--token", stdin=PASTED)
    assert code == 2 and "cannot decrypt" in err and "expirytrack logout --all" in err
    assert "Traceback" not in err
    code, out, err = run(capsys, "status")
    assert code == 1 and "problem : cannot decrypt" in out
    code, out, err = run(capsys, "logout")
    assert code == 2 and "logout --all" in err
    code, out, _ = run(capsys, "logout", "--all")
    assert code == 0 and "credentials.fernet" in out and "credentials.key" in out
    assert not any(creds_dir.iterdir())
    assert run(capsys, "login", "--token", stdin=PASTED)[0] == 0


def free_redirect_uri() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/upstox/callback"


def cli_login(capsys: pytest.CaptureFixture[str], sandbox: Sandbox, *extra: str) -> tuple[int, str]:
    """Run ``expirytrack login`` in a thread and play the browser from here."""
    argv = ["login", "--no-browser", "--timeout", "20", "--base-url", sandbox.base_url]
    argv += ["--ca-cert", str(sandbox.ca_cert_path), *extra]
    result: dict[str, int] = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", main(argv)), daemon=True)
    thread.start()
    printed, deadline = "", time.monotonic() + 10
    while not (found := re.search(r"https://\S+/v2/login/authorization/dialog\S+", printed)):
        assert time.monotonic() < deadline, printed
        time.sleep(0.05)
        printed += capsys.readouterr().out
    browse(sandbox, found.group(0))
    thread.join(20)
    assert not thread.is_alive()
    return result["code"], printed + capsys.readouterr().out


def test_browser_login_through_the_cli_asks_for_the_app_once(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox
) -> None:
    redirect_uri = free_redirect_uri()
    sandbox.register_app("cli-test-key", API_SECRET, redirect_uri)
    monkeypatch.setenv("UPSTOX_API_KEY", "cli-test-key")
    monkeypatch.setenv("UPSTOX_API_SECRET", API_SECRET)
    code, out = cli_login(capsys, sandbox, "--redirect-uri", redirect_uri)
    assert code == 0, out
    assert f"Redirect URI: {redirect_uri}" in out and "register exactly this" in out
    assert "Logged in as Sandbox User (synthetic) (SANDBX)" in out and "03:30 IST" in out
    token = CredentialStore().load().token
    assert token is not None and expiries_status(sandbox, token.access_token) == 200
    assert token.access_token not in out and API_SECRET not in out

    # Typed once: the second login finds key, secret and redirect URI in the store.
    monkeypatch.delenv("UPSTOX_API_KEY")
    monkeypatch.delenv("UPSTOX_API_SECRET")
    code, out = cli_login(capsys, sandbox)
    assert code == 0, out
    second = CredentialStore().load().token
    assert second is not None and second.access_token != token.access_token

    code, out, _ = run(capsys, "status", "--margin-minutes", "0")
    assert code == 0 and "user    : Sandbox User (synthetic) (SANDBX)" in out
    assert f"API app : key cli-test-key, redirect URI {redirect_uri}" in out
    assert f"issued by {sandbox.base_url}" in out
    assert API_SECRET not in out and second.access_token not in out


def test_a_token_about_to_die_is_flagged_at_login(capsys: pytest.CaptureFixture[str]) -> None:
    token = jwt_expiring(datetime.now(IST) + timedelta(minutes=10))
    code, out, _ = run(capsys, "login", "--token", stdin=token)
    assert code == 0 and "Warning" in out and "after 03:30" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["login", "--token", PASTED],
        ["login", f"--token={PASTED}"],
        ["login", PASTED],
        ["login", "--token", "--kind", PASTED],
        ["login", "--kind", "analytics", "--token", PASTED, "--no-browser"],
    ],
)
def test_a_token_on_the_command_line_is_refused_without_echoing_it(
    capsys: pytest.CaptureFixture[str], creds_dir: Path, argv: list[str]
) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors exit rather than return
        code = exc.code
    printed = capsys.readouterr()
    assert code == 2
    assert PASTED not in printed.out + printed.err
    assert len(printed.err.strip().splitlines()) == 1 and "Traceback" not in printed.err
    assert CredentialStore().load().token is None  # nothing stored


def test_command_line_token_refusal_says_how_to_pass_it(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "login", "--token", PASTED)
    assert code == 2 and PASTED not in out + err
    assert "refused" in err and "expirytrack login --token" in err
