"""Token precedence and the deadline guard, in the resource and the sensor, before any request."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, SkipReason, build_sensor_context

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.credentials.guard import active_token, check_deadline
from expirytrack_dagster.credentials.store import CredentialStore, StoredToken
from expirytrack_dagster.resources import UpstoxResource
from expirytrack_dagster.sandbox import Sandbox
from expirytrack_dagster.sandbox_resource import SandboxResource
from expirytrack_dagster.sensors import new_expiry_sensor
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster.upstox.errors import TokenExpired

NOW = datetime(2025, 9, 20, 10, 0, tzinfo=IST)
TONIGHT = datetime(2025, 9, 21, 3, 30, tzinfo=IST)


def stored(
    token: str = "stored-token-value", expires_at: datetime | None = TONIGHT, **kw
) -> StoredToken:
    return StoredToken(token, "access", obtained_at=NOW, issued_at=NOW, expires_at=expires_at, **kw)


def test_environment_wins_over_the_store() -> None:
    store = CredentialStore()
    store.save_token(stored(user_name="Jane"))
    chosen = active_token("env-token-value", store, now=NOW)
    assert chosen is not None and chosen.access_token == "env-token-value"
    assert "UPSTOX_ACCESS_TOKEN" in chosen.source and chosen.stored is None
    assert chosen.deadline_assumed and chosen.expires_at == TONIGHT  # the next 03:30
    fallback = active_token(None, store, now=NOW)
    assert fallback is not None and fallback.access_token == "stored-token-value"
    assert "stored login" in fallback.source and not fallback.deadline_assumed


def test_environment_token_equal_to_the_stored_one_borrows_its_deadline() -> None:
    store = CredentialStore()
    earlier = datetime(2025, 9, 20, 3, 30, tzinfo=IST)
    store.save_token(stored(expires_at=earlier))
    chosen = active_token("stored-token-value", store, now=NOW)
    assert chosen is not None and chosen.expires_at == earlier and not chosen.deadline_assumed


def test_environment_token_survives_a_damaged_store() -> None:
    store = CredentialStore()
    store.save_token(stored())
    store.path.write_bytes(b"garbage")
    assert active_token("env-token-value", store, now=NOW) is not None


@pytest.mark.parametrize(
    ("expires_at", "verdict"),
    [
        (TONIGHT, None),
        (None, None),  # a long-lived token with no known deadline: the API will tell
        (NOW - timedelta(minutes=1), "expired"),
        (NOW + timedelta(minutes=29), "safety margin"),
    ],
)
def test_check_deadline(expires_at: datetime | None, verdict: str | None) -> None:
    store = CredentialStore()
    store.save_token(stored(expires_at=expires_at))
    token = active_token(None, store, now=NOW)
    if verdict is None:
        assert check_deadline(token, now=NOW) is token
        return
    with pytest.raises(TokenExpired) as caught:
        check_deadline(token, now=NOW)
    message = str(caught.value)
    assert verdict in message and "expirytrack login" in message
    assert "stored-token-value" not in message and token.fingerprint in message


def test_missing_token_and_foreign_issuer() -> None:
    with pytest.raises(TokenExpired, match=r"no Upstox access token.*expirytrack login"):
        check_deadline(None)
    store = CredentialStore()
    store.save_token(stored(base_url="https://127.0.0.1:8765"))
    token = active_token(None, store, now=NOW)
    with pytest.raises(TokenExpired, match=r"issued by https://127.0.0.1:8765"):
        check_deadline(token, base_url="https://api.upstox.com", now=NOW)


def sandbox_resource(sb: Sandbox, tmp_path: Path, **fields) -> UpstoxResource:
    """Upstox-mode resource aimed at the sandbox, its token coming from the store."""
    base = {
        "source": "upstox",
        "base_url": sb.base_url,
        "ca_cert_path": str(sb.ca_cert_path),
        "state_dir": str(tmp_path / "state"),
        "max_attempts": 1,
    }
    return UpstoxResource(**{**base, **fields})


def test_resource_takes_the_stored_token_and_checks_it(sandbox: Sandbox, tmp_path: Path) -> None:
    # Nothing configured or stored: still Upstox, never a silent sandbox fallback.
    assert UpstoxResource().resolved_source() == "upstox"
    now = datetime.now(IST)
    token = f"tok-{tmp_path.name}"
    sandbox.add_token(token, now + timedelta(hours=5))
    CredentialStore().save_token(
        stored(token, expires_at=now + timedelta(hours=5), base_url=sandbox.base_url)
    )
    assert UpstoxResource().resolved_source() == "upstox"  # auto: a stored login means Upstox
    resource = sandbox_resource(sandbox, tmp_path)
    active = resource.check_token_deadline()
    assert active is not None and active.access_token == token
    with pytest.raises(TokenExpired, match="safety margin"):
        sandbox_resource(sandbox, tmp_path, token_margin_minutes=6 * 60).client()


def test_sandbox_is_exempt_unless_it_has_a_deadline(tmp_path: Path) -> None:
    free = SandboxResource(sandbox_url="https://127.0.0.1:1", sandbox_token="t")
    assert free.check_token_deadline() is None
    past = (datetime.now(IST) - timedelta(minutes=1)).isoformat()
    dated = SandboxResource(
        sandbox_url="https://127.0.0.1:1",
        sandbox_token="t",
        sandbox_token_expires_at=past,
    )
    with pytest.raises(TokenExpired, match=r"expired.*expirytrack login"):
        dated.client()


@pytest.mark.parametrize("case", ["missing", "dead", "dying"])
def test_sensor_skips_before_any_request(sandbox: Sandbox, tmp_path: Path, case: str) -> None:
    now = datetime.now(IST)
    if case != "missing":
        deadline = now - timedelta(hours=1) if case == "dead" else now + timedelta(minutes=10)
        token = f"sensor-{case}-{tmp_path.name}"
        sandbox.add_token(token, deadline)
        CredentialStore().save_token(stored(token, expires_at=deadline, base_url=sandbox.base_url))
    before = sandbox.stats()["total"]
    resources = {"upstox": sandbox_resource(sandbox, tmp_path), "collection": CollectionSettings()}
    with (
        DagsterInstance.ephemeral() as instance,
        build_sensor_context(instance=instance, resources=resources) as context,
    ):
        result = new_expiry_sensor(context)
    assert isinstance(result, SkipReason)
    assert "expirytrack login" in (result.skip_message or "")
    expected = {"missing": "no Upstox access token", "dead": "expired", "dying": "safety margin"}
    assert expected[case] in (result.skip_message or "")
    assert sandbox.stats()["total"] == before  # not one request reached the sandbox
