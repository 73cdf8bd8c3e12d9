"""The Analytics Token: stored beside the daily token, used for live capture, guarded on its own."""

from __future__ import annotations

import asyncio
import io
from datetime import datetime, timedelta

import pytest

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.cli import main
from expirytrack_dagster.credentials.store import CredentialStore
from expirytrack_dagster.resources import UpstoxResource
from expirytrack_dagster.upstox.client import UpstoxClient
from expirytrack_dagster.upstox.errors import TokenExpired
from expirytrack_dagster_tests.credentials.test_cli import jwt_expiring

DAILY = "daily-token-0123456789abcdef"


def _login(capsys: pytest.CaptureFixture[str], *argv: str, stdin: str) -> tuple[int, str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(["login", *argv])
    out = capsys.readouterr()
    return code, out.out + out.err


def _bearer(client: UpstoxClient) -> str:
    token = client._http.headers["Authorization"].removeprefix("Bearer ")
    asyncio.run(client.aclose())
    return token


def test_both_tokens_stored_each_used_for_its_data(capsys: pytest.CaptureFixture[str]) -> None:
    analytics = jwt_expiring(datetime.now(IST) + timedelta(days=200))
    assert _login(capsys, "--token", stdin=DAILY)[0] == 0
    code, out = _login(capsys, "--analytics-token", stdin=analytics + "\n")
    assert code == 0 and analytics not in out and "Analytics Token" in out
    creds = CredentialStore().load()
    assert creds.token.access_token == DAILY and creds.analytics.access_token == analytics
    assert creds.analytics.expires_at.date() == (datetime.now(IST) + timedelta(days=200)).date()
    main(["status", "--margin-minutes", "0"])
    status = capsys.readouterr().out
    assert "live    : Analytics Token" in status and analytics not in status

    resource = UpstoxResource(base_url="https://127.0.0.1:1")
    assert _bearer(resource.live_client()) == analytics
    assert _bearer(resource.client()) == DAILY  # expired data keeps the daily login

    CredentialStore().forget_token()  # logout forgets the daily token, not the analytics one
    assert CredentialStore().load().analytics is not None


def test_live_falls_back_to_the_daily_token_and_a_dead_analytics_token_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _login(capsys, "--token", stdin=DAILY)
    resource = UpstoxResource(base_url="https://127.0.0.1:1")
    assert _bearer(resource.live_client()) == DAILY
    dead = jwt_expiring(datetime.now(IST) - timedelta(days=1))
    assert _login(capsys, "--analytics-token", stdin=dead)[0] == 0
    with pytest.raises(TokenExpired, match="--analytics-token") as caught:
        resource.live_client()
    assert dead not in str(caught.value)
    code, out = _login(capsys, "--analytics-token=secret-value", stdin="")
    assert code == 2 and "secret-value" not in out
