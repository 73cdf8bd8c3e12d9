"""Dagster runs with a stored login: they work, fail fast on a dying token, and never leak it."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from dagster import SensorResult, build_sensor_context
from dagster._serdes import serialize_value

from expirytrack_dagster.assets import contracts, expiries
from expirytrack_dagster.calendar import IST
from expirytrack_dagster.credentials.oauth import login_with_browser
from expirytrack_dagster.credentials.store import AppCredentials, CredentialStore, StoredToken
from expirytrack_dagster.sandbox import SandboxConfig
from expirytrack_dagster.sensors import new_expiry_sensor
from expirytrack_dagster_tests.credentials.conftest import TODAY, LoginThread, browse
from expirytrack_dagster_tests.pipeline import Pipeline, pipeline

EXPIRY = date(2025, 8, 28)
DATA_KINDS = ("expiries", "option_contracts", "future_contracts", "candles")


@pytest.fixture
def logged_in(tmp_path: Path) -> Iterator[tuple[Pipeline, str]]:
    """A pipeline on a fresh sandbox, and a token obtained by a real browser-style login."""
    # Served: the real-source path connects to Upstox's address over TLS; here, the sandbox's.
    with pipeline(tmp_path, SandboxConfig(seed=7, today=TODAY), served=True) as p:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            redirect_uri = f"http://127.0.0.1:{probe.getsockname()[1]}/upstox/callback"
        p.sandbox.register_app("dagster-test-app", "dagster-test-secret", redirect_uri)
        app = AppCredentials("dagster-test-app", "dagster-test-secret", redirect_uri)
        flow = LoginThread(
            lambda show: login_with_browser(
                app,
                show_url=show,
                open_browser=False,
                base_url=p.sandbox.base_url,
                verify=p.sandbox.ssl_context(),
            )
        ).start()
        browse(p.sandbox, flow.url())
        token = flow.join()
        assert flow.error is None
        CredentialStore().save_token(token)
        p.sandbox.reset_stats()
        yield p, token.access_token


def upstox_mode(p: Pipeline, margin_minutes: int = 0) -> dict:
    """Resource overrides: the real-Upstox code path (token from the store), aimed at the sandbox.

    The margin defaults to 0 here: a token from a real login dies at the next 03:30 IST, and
    these tests must pass at any hour, including the half hour before it.
    """
    return {
        "source": "upstox",
        "base_url": p.sandbox.base_url,
        "sandbox_token": None,
        "token_margin_minutes": margin_minutes,
    }


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    # hpack logs decoded headers at DEBUG; in these tests the decoding side is the sandbox's
    # server (standing in for Upstox's), which must see the token. The client side sends
    # Authorization as a never-indexed header, which hpack redacts in its own logs.
    logging.getLogger("hpack").setLevel(logging.INFO)
    return caplog


def assert_nowhere(token: str, p: Pipeline, run_id: str, *texts: str) -> None:
    entries = p.instance.all_logs(run_id)
    assert entries, "the run logged nothing?"
    for entry in entries:
        assert token not in serialize_value(entry)
    run = p.instance.get_run_by_id(run_id)
    assert run is not None and token not in serialize_value(run)
    for text in texts:
        assert token not in text
    if p.database.exists():
        assert token.encode() not in p.database.read_bytes()


def failure_message(result) -> str:
    (failure,) = result.get_step_failure_events()
    error = failure.step_failure_data.error
    assert error is not None
    text = error.message
    while error.cause is not None:
        error = error.cause
        text += error.message
    return text


def test_a_stored_login_collects_and_the_token_never_leaks(
    logged_in: tuple[Pipeline, str],
    captured_logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    p, token = logged_in
    key = p.partition("NIFTY", EXPIRY)
    result = p.materialize(key, selection=[expiries, contracts], **upstox_mode(p))
    assert result.success
    assert p.sandbox.stats()["by_kind"]["expiries"] == 1
    assert p.query("SELECT data_source FROM expiries") == [("upstox",)]
    assert p.query("SELECT count(*) FROM contracts")[0][0] > 0
    out = capfd.readouterr()
    assert_nowhere(token, p, result.run_id, captured_logs.text, out.out, out.err)


@pytest.mark.parametrize("case", ["dead", "within_margin"])
def test_a_dying_token_fails_the_run_before_any_request(
    logged_in: tuple[Pipeline, str],
    captured_logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    case: str,
) -> None:
    p, token = logged_in
    overrides = upstox_mode(p, margin_minutes=30)
    if case == "dead":
        # Logged in yesterday morning: the token died at 03:30 IST today.
        issued = datetime.now(IST) - timedelta(days=1, hours=1)
        deadline = datetime.now(IST) - timedelta(hours=1)
        p.sandbox.add_token(token, deadline)  # the sandbox would answer 401 too
        store = CredentialStore()
        old = store.load().token
        assert old is not None
        store.save_token(
            StoredToken(
                token,
                "access",
                obtained_at=issued,
                issued_at=issued,
                expires_at=deadline,
                user_id=old.user_id,
                user_name=old.user_name,
                base_url=old.base_url,
            )
        )
        expected = "expired"
    else:
        overrides["token_margin_minutes"] = 36 * 60  # every 03:30 deadline lies inside it
        expected = "safety margin"
    key = p.partition("NIFTY", EXPIRY)
    result = p.materialize(key, selection=[expiries], raise_on_error=False, **overrides)
    assert not result.success
    message = failure_message(result)
    assert "TokenExpired" in serialize_value(result.get_step_failure_events()[0])
    assert expected in message and "expirytrack login" in message
    assert all(p.sandbox.stats()["by_kind"][kind] == 0 for kind in DATA_KINDS)
    out = capfd.readouterr()
    assert_nowhere(token, p, result.run_id, message, captured_logs.text, out.out, out.err)


def test_the_sensor_polls_with_a_healthy_stored_login(logged_in: tuple[Pipeline, str]) -> None:
    p, _ = logged_in
    resources = {"upstox": p.upstox(**upstox_mode(p)), "collection": p.collection}
    with build_sensor_context(instance=p.instance, resources=resources) as context:
        result = new_expiry_sensor(context)
    assert isinstance(result, SensorResult)
    assert p.sandbox.stats()["by_kind"]["expiries"] > 0
