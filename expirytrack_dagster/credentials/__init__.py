"""Upstox credentials: ``expirytrack login``, the encrypted token store and the token deadline guard."""

from expirytrack_dagster.credentials.deadline import (
    TOKEN_KINDS,
    describe_deadline,
    next_reset,
    token_deadline,
)
from expirytrack_dagster.credentials.guard import (
    ENV_TOKEN,
    ActiveToken,
    active_token,
    check_deadline,
    token_for_run,
)
from expirytrack_dagster.credentials.oauth import (
    DEFAULT_REDIRECT_URI,
    CallbackServer,
    LoginError,
    authorization_url,
    exchange_code,
    login_with_browser,
)
from expirytrack_dagster.credentials.store import (
    AppCredentials,
    Credentials,
    CredentialStore,
    CredentialStoreError,
    StoredToken,
    default_credentials_dir,
)

__all__ = [
    "DEFAULT_REDIRECT_URI",
    "ENV_TOKEN",
    "TOKEN_KINDS",
    "ActiveToken",
    "AppCredentials",
    "CallbackServer",
    "CredentialStore",
    "CredentialStoreError",
    "Credentials",
    "LoginError",
    "StoredToken",
    "active_token",
    "authorization_url",
    "check_deadline",
    "default_credentials_dir",
    "describe_deadline",
    "exchange_code",
    "login_with_browser",
    "next_reset",
    "token_deadline",
    "token_for_run",
]
