"""The encrypted credential store: the Upstox login and API app, Fernet-encrypted, key kept apart.

Where things live (chosen per user, not per checkout: one Upstox login serves every project and
Dagster process of that user, whatever their working directory):

- the store: ``$EXPIRYTRACK_CREDENTIALS_DIR/credentials.fernet``, by default
  ``$XDG_CONFIG_HOME/expirytrack/`` (``~/.config/expirytrack/``); directory 0700, file 0600;
- the key: ``$EXPIRYTRACK_CREDENTIALS_KEY`` (a Fernet key, for servers and containers: no key file
  is written), else the file ``$EXPIRYTRACK_CREDENTIALS_KEY_FILE``, by default ``credentials.key``
  beside the store, 0600. Put the key file elsewhere (or use the variable) to keep a copied or
  backed-up credentials directory useless on its own.

Files that other users can read are refused, as ssh does. Nothing here ever prints a secret: the
token, the API secret and the key appear in no message, repr or log.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from expirytrack_dagster.atomic_write import write_bytes_atomically

ENV_DIR = "EXPIRYTRACK_CREDENTIALS_DIR"
ENV_KEY = "EXPIRYTRACK_CREDENTIALS_KEY"
ENV_KEY_FILE = "EXPIRYTRACK_CREDENTIALS_KEY_FILE"
STORE_FILE = "credentials.fernet"
KEY_FILE = "credentials.key"
RESET_HINT = (
    "run `expirytrack logout --all` (deletes the store and its key), then `expirytrack login`"
)
_FORMAT_VERSION = 1


class CredentialStoreError(Exception):
    """The store cannot be read or written; the message says why and how to get out of it."""


@dataclass(frozen=True)
class AppCredentials:
    """The Upstox developer app the user logs in through: API key, secret, redirect URI."""

    api_key: str
    api_secret: str = field(repr=False)
    redirect_uri: str


@dataclass(frozen=True)
class StoredToken:
    """A token and what is known about it; ``access_token`` never shows in a repr."""

    access_token: str = field(repr=False)
    kind: str  # one of deadline.TOKEN_KINDS
    obtained_at: datetime  # when it was stored (login or paste)
    issued_at: datetime | None = None  # when Upstox issued it, if known (the OAuth login)
    expires_at: datetime | None = None  # None: a long-lived token with no known deadline
    user_id: str | None = None
    user_name: str | None = None
    email: str | None = None
    base_url: str | None = None  # the API host that issued it (None: pasted)


@dataclass(frozen=True)
class Credentials:
    """Everything the store holds; any part may be missing.

    ``token`` is the daily login (expired-instrument data); ``analytics`` the one-year read-only
    Analytics Token the live capture prefers (``expirytrack login --analytics-token``).
    """

    app: AppCredentials | None = None
    token: StoredToken | None = None
    analytics: StoredToken | None = None


def default_credentials_dir() -> Path:
    """``$EXPIRYTRACK_CREDENTIALS_DIR``, else ``$XDG_CONFIG_HOME/expirytrack`` (``~/.config/expirytrack``)."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    config_home = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config_home) / "expirytrack"


def _check_private(path: Path) -> None:
    if os.name != "posix":
        return
    st = path.stat()
    if st.st_mode & 0o077:
        raise CredentialStoreError(
            f"{path} can be read by other users (mode {st.st_mode & 0o777:04o}); it holds "
            f"secrets, so it is not used: run `chmod 600 {path}` if it is yours, or {RESET_HINT}"
        )
    if st.st_uid != os.getuid():
        raise CredentialStoreError(f"{path} belongs to another user; it is not used: {RESET_HINT}")


def _make_private_dir(directory: Path) -> None:
    if directory.is_dir():
        return
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.name == "posix":
        directory.chmod(0o700)  # mkdir's mode is filtered by the umask


def _encode(creds: Credentials) -> bytes:
    def row(obj: Any) -> dict[str, Any] | None:
        if obj is None:
            return None
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(obj).items()}

    body = {"version": _FORMAT_VERSION, "app": row(creds.app), "token": row(creds.token)}
    if creds.analytics is not None:  # absent otherwise: older versions read the file unchanged
        body["analytics"] = row(creds.analytics)
    return json.dumps(body, separators=(",", ":")).encode()


def _decode(plain: bytes) -> Credentials:
    body = json.loads(plain)
    if body.get("version") != _FORMAT_VERSION:
        raise ValueError("unknown store version")
    app = AppCredentials(**body["app"]) if body.get("app") else None
    token, analytics = _decode_token(body.get("token")), _decode_token(body.get("analytics"))
    return Credentials(app=app, token=token, analytics=analytics)


def _decode_token(row: Any) -> StoredToken | None:
    if not row:
        return None
    fields = dict(row)
    for name in ("obtained_at", "issued_at", "expires_at"):
        if fields.get(name) is not None:
            fields[name] = datetime.fromisoformat(fields[name])
    return StoredToken(**fields)


class CredentialStore:
    """One encrypted credentials file and the key that opens it.

    ``directory``, ``key`` and ``key_file`` override the environment (tests pass temporary paths).
    """

    def __init__(
        self,
        directory: str | Path | None = None,
        *,
        key: str | bytes | None = None,
        key_file: str | Path | None = None,
    ) -> None:
        self.directory = Path(directory).expanduser() if directory else default_credentials_dir()
        self.path = self.directory / STORE_FILE
        if key is None and os.environ.get(ENV_KEY):
            key = os.environ[ENV_KEY]
        self._key = key.encode() if isinstance(key, str) else key
        if key_file is None and os.environ.get(ENV_KEY_FILE):
            key_file = os.environ[ENV_KEY_FILE]
        self.key_file = Path(key_file).expanduser() if key_file else self.directory / KEY_FILE

    def __repr__(self) -> str:
        return f"CredentialStore({str(self.path)!r})"

    @property
    def key_source(self) -> str:
        """Where the key comes from, for messages: the variable's name or the key file's path."""
        return f"${ENV_KEY}" if self._key is not None else str(self.key_file)

    # ---- the key ------------------------------------------------------------------------------

    def _fernet(self, *, create: bool) -> Fernet:
        key = self._key
        if key is None:
            key = self._read_key_file() if not create else self._read_or_create_key_file()
        try:
            return Fernet(key)
        except (ValueError, TypeError):
            raise CredentialStoreError(
                f"the credentials key in {self.key_source} is not a Fernet key (make one with "
                "`python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)"
            ) from None

    def _read_key_file(self) -> bytes:
        if not self.key_file.exists():
            raise CredentialStoreError(
                f"{self.path} exists but its key {self.key_file} is missing (set "
                f"${ENV_KEY} or ${ENV_KEY_FILE} if it lives elsewhere), so it cannot be "
                f"decrypted: {RESET_HINT}"
            )
        _check_private(self.key_file)
        return self.key_file.read_bytes().strip()

    def _read_or_create_key_file(self) -> bytes:
        if self.key_file.exists():
            return self._read_key_file()
        _make_private_dir(self.key_file.parent)
        key = Fernet.generate_key()
        try:
            fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            return self._read_key_file()
        with os.fdopen(fd, "wb") as out:
            if os.name == "posix":
                os.fchmod(out.fileno(), 0o600)
            out.write(key + b"\n")
        return key

    # ---- reading and writing ------------------------------------------------------------------

    def exists(self) -> bool:
        """True when a store file exists (it may still be undecryptable)."""
        return self.path.exists()

    def load(self) -> Credentials:
        """What is stored (empty when nothing is); ``CredentialStoreError`` when unreadable."""
        if not self.path.exists():
            return Credentials()
        _check_private(self.path)
        fernet = self._fernet(create=False)
        try:
            plain = fernet.decrypt(self.path.read_bytes())
        except InvalidToken:
            raise CredentialStoreError(
                f"cannot decrypt {self.path} with the key from {self.key_source}: the file was "
                f"changed or damaged, or the key is not the one it was written with. Way out: "
                f"{RESET_HINT}"
            ) from None
        try:
            return _decode(plain)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise CredentialStoreError(
                f"{self.path} decrypts but its content is not a credentials record this version "
                f"understands: {RESET_HINT}"
            ) from None

    def save(self, creds: Credentials) -> None:
        """Replace the store's content with ``creds`` (atomically; mode 0600)."""
        if self.path.exists():
            self.load()  # never silently overwrite a store this key cannot open
        fernet = self._fernet(create=True)
        _make_private_dir(self.directory)
        write_bytes_atomically(self.path, fernet.encrypt(_encode(creds)), private=True)

    def save_token(self, token: StoredToken) -> None:
        """Store ``token``, keeping the stored API app."""
        self.save(replace(self.load(), token=token))

    def save_analytics_token(self, token: StoredToken) -> None:
        """Store the Analytics Token beside the daily token (which stays)."""
        self.save(replace(self.load(), analytics=token))

    def save_app(self, app: AppCredentials) -> None:
        """Store the API app, keeping the stored token."""
        self.save(replace(self.load(), app=app))

    def forget_token(self) -> bool:
        """Remove the stored token (the API app stays); True when there was one."""
        creds = self.load()
        if creds.token is None:
            return False
        self.save(replace(creds, token=None))
        return True

    def destroy(self) -> list[Path]:
        """Delete the store and its key file without reading them (works on a damaged store)."""
        removed = []
        targets = [self.path] + ([self.key_file] if self._key is None else [])
        for path in targets:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
        return removed
