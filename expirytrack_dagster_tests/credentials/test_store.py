"""The encrypted store: round trip, file modes, key handling, and clear failures on damage."""

from __future__ import annotations

import os
import stat
from datetime import datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.credentials.store import (
    ENV_KEY,
    ENV_KEY_FILE,
    AppCredentials,
    Credentials,
    CredentialStore,
    CredentialStoreError,
    StoredToken,
    default_credentials_dir,
)

TOKEN = "eyJ0eXAiOiJKV1QifQ.payload-of-a-secret-token.signature"
SECRET = "app-secret-never-shown"
NOW = datetime(2025, 9, 20, 10, 0, tzinfo=IST)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def sample() -> Credentials:
    return Credentials(
        app=AppCredentials("my-api-key", SECRET, "http://127.0.0.1:5055/upstox/callback"),
        token=StoredToken(
            TOKEN,
            "access",
            obtained_at=NOW,
            issued_at=NOW,
            expires_at=datetime(2025, 9, 21, 3, 30, tzinfo=IST),
            user_id="AB1234",
            user_name="Jane",
            base_url="https://api.upstox.com",
        ),
    )


def test_round_trip_encrypted_and_private(creds_dir: Path) -> None:
    store = CredentialStore()
    assert store.directory == creds_dir == default_credentials_dir()
    assert store.load() == Credentials()
    store.save(sample())
    assert store.load() == sample()
    raw = store.path.read_bytes()
    assert TOKEN.encode() not in raw and SECRET.encode() not in raw and b"Jane" not in raw
    assert mode(creds_dir) == 0o700
    assert mode(store.path) == 0o600
    assert mode(store.key_file) == 0o600
    assert store.key_file != store.path and store.key_file.read_bytes().strip() not in raw


def test_files_stay_0600_under_a_permissive_umask(creds_dir: Path) -> None:
    old = os.umask(0o000)
    try:
        CredentialStore().save(sample())
    finally:
        os.umask(old)
    assert mode(creds_dir) == 0o700
    assert mode(creds_dir / "credentials.fernet") == mode(creds_dir / "credentials.key") == 0o600


def test_partial_updates_keep_the_other_part() -> None:
    store = CredentialStore()
    store.save(sample())
    assert store.forget_token() is True
    assert store.load() == Credentials(app=sample().app)
    assert store.forget_token() is False
    store.save_token(sample().token)
    assert store.load() == sample()


def test_no_secret_in_reprs() -> None:
    creds = sample()
    text = repr(creds) + repr(CredentialStore())
    assert TOKEN not in text and SECRET not in text


def test_tampered_ciphertext_fails_clearly(creds_dir: Path) -> None:
    store = CredentialStore()
    store.save(sample())
    data = bytearray(store.path.read_bytes())
    data[len(data) // 2] ^= 0x01
    store.path.write_bytes(bytes(data))
    with pytest.raises(CredentialStoreError) as caught:
        store.load()
    message = str(caught.value)
    assert "cannot decrypt" in message and "expirytrack logout --all" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert "b'" not in message and TOKEN not in message
    with pytest.raises(CredentialStoreError):  # never overwritten blindly
        store.save_token(sample().token)  # type: ignore[arg-type]
    removed = store.destroy()
    assert set(removed) == {store.path, store.key_file}
    store.save(sample())
    assert store.load() == sample()


def test_wrong_key_and_missing_key(creds_dir: Path) -> None:
    store = CredentialStore()
    store.save(sample())
    other = CredentialStore(key=Fernet.generate_key())
    with pytest.raises(CredentialStoreError, match="cannot decrypt"):
        other.load()
    store.key_file.unlink()
    with pytest.raises(CredentialStoreError, match=r"key .* is missing"):
        CredentialStore().load()


def test_readable_by_others_is_refused(creds_dir: Path) -> None:
    store = CredentialStore()
    store.save(sample())
    store.key_file.chmod(0o644)
    with pytest.raises(CredentialStoreError, match="chmod 600"):
        store.load()
    store.key_file.chmod(0o600)
    store.path.chmod(0o640)
    with pytest.raises(CredentialStoreError, match="other users"):
        store.load()


def test_key_from_environment_writes_no_key_file(
    creds_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_KEY, Fernet.generate_key().decode())
    store = CredentialStore()
    store.save(sample())
    assert not store.key_file.exists() and store.key_source == f"${ENV_KEY}"
    assert CredentialStore().load() == sample()
    monkeypatch.setenv(ENV_KEY, "not-a-key")
    with pytest.raises(CredentialStoreError, match="not a Fernet key"):
        CredentialStore().load()
    assert store.destroy() == [store.path]  # a key it never wrote is not its to delete


def test_key_file_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file = tmp_path / "secrets" / "expirytrack.key"
    monkeypatch.setenv(ENV_KEY_FILE, str(key_file))
    store = CredentialStore()
    store.save(sample())
    assert key_file.exists() and mode(key_file) == 0o600
    assert not (store.directory / "credentials.key").exists()


def test_unknown_content_fails_clearly() -> None:
    store = CredentialStore()
    store.save(sample())
    fernet = Fernet(store.key_file.read_bytes().strip())
    store.path.write_bytes(fernet.encrypt(b'{"version": 99}'))
    with pytest.raises(CredentialStoreError, match="not a credentials record"):
        store.load()
