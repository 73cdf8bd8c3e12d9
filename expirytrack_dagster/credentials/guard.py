"""Which token a run uses (``UPSTOX_ACCESS_TOKEN`` wins over the store) and whether it may start."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.credentials.deadline import describe_deadline, token_deadline
from expirytrack_dagster.credentials.store import CredentialStore, CredentialStoreError, StoredToken
from expirytrack_dagster.upstox.client import token_fingerprint
from expirytrack_dagster.upstox.errors import LOGIN_FIX, TokenExpired

ENV_TOKEN = "UPSTOX_ACCESS_TOKEN"
DEFAULT_MARGIN = timedelta(minutes=30)


@dataclass(frozen=True)
class ActiveToken:
    """The token a run would use, where it came from, and when it dies. No secret in its repr."""

    access_token: str = field(repr=False)
    source: str  # e.g. "environment variable UPSTOX_ACCESS_TOKEN" or "stored login (<path>)"
    expires_at: datetime | None
    deadline_assumed: bool  # True: the issue time is unknown, 03:30 IST next is a guess
    stored: StoredToken | None = None  # the store's record of this token, when it has one

    @property
    def fingerprint(self) -> str:
        return token_fingerprint(self.access_token)


def active_token(
    configured: str | None,
    store: CredentialStore | None,
    *,
    configured_source: str = f"environment variable {ENV_TOKEN}",
    now: datetime | None = None,
) -> ActiveToken | None:
    """The token to use: ``configured`` (from the environment) first, else the stored login.

    A configured token that is also the stored one borrows the store's issue time; a store that
    cannot be read only matters when it is the token's source (then ``CredentialStoreError``).
    """
    now = now or datetime.now(IST)
    if configured:
        stored = None
        if store is not None and store.exists():
            try:
                stored = store.load().token
            except CredentialStoreError:
                stored = None  # the configured token wins anyway
        if stored is not None and stored.access_token == configured:
            return ActiveToken(configured, configured_source, stored.expires_at, False, stored)
        return ActiveToken(
            configured,
            configured_source,
            token_deadline(configured, "access", None, now),
            True,
        )
    if store is None:
        return None
    stored = store.load().token
    if stored is None:
        return None
    return ActiveToken(
        stored.access_token, f"stored login ({store.path})", stored.expires_at, False, stored
    )


def check_deadline(
    token: ActiveToken | None,
    *,
    margin: timedelta = DEFAULT_MARGIN,
    base_url: str | None = None,
    now: datetime | None = None,
) -> ActiveToken:
    """``token`` when a run may start with it; ``TokenExpired`` naming the fix otherwise.

    Refused: no token; a token past its deadline; a token that dies within ``margin`` (a run
    started now would die half-way); a stored token issued by another API host than ``base_url``.
    """
    if token is None:
        raise TokenExpired(f"no Upstox access token is configured or stored — {LOGIN_FIX}")
    now = now or datetime.now(IST)
    name = f"the Upstox token {token.fingerprint} from the {token.source}"
    issuer = token.stored.base_url if token.stored else None
    if base_url and issuer and issuer.rstrip("/") != base_url.rstrip("/"):
        raise TokenExpired(
            f"{name} was issued by {issuer}, but runs call {base_url} — {LOGIN_FIX} against it"
        )
    deadline = token.expires_at
    if deadline is None:
        return token
    assumed = " (assumed: its issue time is unknown)" if token.deadline_assumed else ""
    if deadline <= now:
        raise TokenExpired(
            f"{name} {describe_deadline(deadline, now)}: Upstox tokens die at 03:30 IST after "
            f"login — {LOGIN_FIX}"
        )
    if deadline - now <= margin:
        minutes = int(margin.total_seconds() // 60)
        raise TokenExpired(
            f"{name} {describe_deadline(deadline, now)}{assumed}, within the {minutes}-minute "
            f"safety margin (token_margin_minutes): a run started now could die half-way — "
            f"{LOGIN_FIX}"
        )
    return token


def has_stored_token(credentials_dir: str | Path | None) -> bool:
    """True when the store holds a token, or cannot be read (so the read error surfaces later)."""
    store = CredentialStore(credentials_dir)
    if not store.exists():
        return False
    try:
        return store.load().token is not None
    except CredentialStoreError:
        return True


def token_for_run(
    configured: str | None,
    *,
    credentials_dir: str | Path | None,
    base_url: str | None,
    margin: timedelta = DEFAULT_MARGIN,
    now: datetime | None = None,
) -> ActiveToken:
    """The Upstox token a run may start with (configured first, else stored), or ``TokenExpired``."""
    store = CredentialStore(credentials_dir)
    try:
        token = active_token(
            configured, store, configured_source="configured access_token (UPSTOX_ACCESS_TOKEN)"
        )
    except CredentialStoreError as exc:
        raise TokenExpired(f"{exc}") from None
    return check_deadline(token, margin=margin, base_url=base_url, now=now)


def token_with_deadline(
    access_token: str,
    expires_at: str,
    *,
    source: str,
    margin: timedelta = DEFAULT_MARGIN,
    now: datetime | None = None,
) -> ActiveToken:
    """Check a token whose deadline is configured (ISO 8601; naive means IST), e.g. a sandbox's."""
    deadline = datetime.fromisoformat(expires_at)
    if deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=IST)
    token = ActiveToken(access_token, source, deadline, deadline_assumed=False)
    return check_deadline(token, margin=margin, now=now)


ENV_ANALYTICS_TOKEN = "UPSTOX_ANALYTICS_TOKEN"
ANALYTICS_FIX = (
    "create a new Analytics Token on the Upstox Developer Apps page and store it with "
    "`expirytrack login --analytics-token` (it reads the token from standard input)"
)


def analytics_token(
    configured: str | None, credentials_dir: str | Path | None
) -> ActiveToken | None:
    """The Analytics Token for live data: ``configured`` (``UPSTOX_ANALYTICS_TOKEN``) first, else
    the stored one; None when there is neither."""
    if configured:
        deadline = token_deadline(configured, "analytics", None, datetime.now(IST))
        return ActiveToken(
            configured, f"environment variable {ENV_ANALYTICS_TOKEN}", deadline, False
        )
    store = CredentialStore(credentials_dir)
    if not store.exists():
        return None
    try:
        stored = store.load().analytics
    except CredentialStoreError as exc:
        raise TokenExpired(f"{exc}") from None
    if stored is None:
        return None
    source = f"stored Analytics Token ({store.path})"
    return ActiveToken(stored.access_token, source, stored.expires_at, False, stored)


def live_token_for_run(
    configured_analytics: str | None,
    configured_access: str | None,
    *,
    credentials_dir: str | Path | None,
    base_url: str | None,
    margin: timedelta = DEFAULT_MARGIN,
    now: datetime | None = None,
) -> ActiveToken:
    """The token live capture uses: the Analytics Token when there is one (guarded by its own
    expiry, about a year), else the daily token (guarded by its 03:30 IST deadline)."""
    token = analytics_token(configured_analytics, credentials_dir)
    if token is None:
        return token_for_run(
            configured_access,
            credentials_dir=credentials_dir,
            base_url=base_url,
            margin=margin,
            now=now,
        )
    now = now or datetime.now(IST)
    name = f"the Upstox Analytics Token {token.fingerprint} from the {token.source}"
    if token.expires_at is not None and token.expires_at - now <= margin:
        raise TokenExpired(f"{name} {describe_deadline(token.expires_at, now)} — {ANALYTICS_FIX}")
    return token
