"""Credential test fixtures: a private store directory per test, a clean environment, a sandbox."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from expirytrack_dagster.credentials.store import ENV_DIR, ENV_KEY, ENV_KEY_FILE
from expirytrack_dagster.sandbox import Sandbox, SandboxConfig, run_sandbox

TODAY = date(2025, 9, 20)
NIFTY = "NSE_INDEX|Nifty 50"
_CLEARED = (
    ENV_KEY,
    ENV_KEY_FILE,
    "UPSTOX_ACCESS_TOKEN",
    "UPSTOX_API_KEY",
    "UPSTOX_API_SECRET",
    "SSH_CONNECTION",
    "DISPLAY",
    "WAYLAND_DISPLAY",
)


@pytest.fixture(autouse=True)
def creds_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every credentials test stores under tmp_path, never the user's home, and sees no real token."""
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "credentials"
    monkeypatch.setenv(ENV_DIR, str(path))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    monkeypatch.setenv("EXPIRYTRACK_CONFIG", str(tmp_path / "no-settings.yaml"))
    return path


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """One sandbox for the login tests; each test registers its own app, so they do not collide."""
    with run_sandbox(SandboxConfig(seed=7, today=TODAY)) as sb:
        yield sb


def data_client(sb: Sandbox, token: str) -> httpx.Client:
    """A client for the sandbox's data endpoints with ``token``."""
    return httpx.Client(
        base_url=sb.base_url,
        verify=sb.ssl_context(),
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        timeout=10.0,
    )


def expiries_status(sb: Sandbox, token: str) -> int:
    """The HTTP status the expiries endpoint gives ``token``."""
    with data_client(sb, token) as client:
        response = client.get("/v2/expired-instruments/expiries", params={"instrument_key": NIFTY})
        return response.status_code


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


class LoginThread:
    """Runs ``target`` (a login flow) in a thread; the dialog URL it shows arrives in ``url()``."""

    def __init__(self, target: Callable[[Callable[[str], None]], Any]) -> None:
        self._url: str | None = None
        self._shown = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(target,), daemon=True)

    def _show(self, url: str) -> None:
        self._url = url
        self._shown.set()

    def _run(self, target: Callable[[Callable[[str], None]], Any]) -> None:
        try:
            self.result = target(self._show)
        except BaseException as exc:
            self.error = exc

    def start(self) -> LoginThread:
        self._thread.start()
        return self

    def url(self, timeout: float = 10.0) -> str:
        assert self._shown.wait(timeout), "the login flow never showed its URL"
        assert self._url is not None
        return self._url

    def join(self, timeout: float = 30.0) -> Any:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the login flow did not finish"
        return self.result


def browse(
    sb: Sandbox, url: str, *, steal_code: Callable[[str], None] | None = None
) -> httpx.Response:
    """Act like a browser: open the dialog, then follow its redirect to the loopback callback."""
    with httpx.Client(verify=sb.ssl_context(), timeout=10.0) as browser:
        dialog = browser.get(url, follow_redirects=False)
        if dialog.status_code != 302:
            return dialog
        location = dialog.headers["location"]
        if steal_code is not None:
            steal_code(query_of(location)["code"])
        return browser.get(location, follow_redirects=False)
