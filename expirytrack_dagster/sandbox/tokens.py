"""The access tokens the sandbox accepts, each with an optional deadline and its Upstox plan."""

from __future__ import annotations

import secrets
import threading
from datetime import datetime

from expirytrack_dagster.calendar import IST


def new_token() -> str:
    """A random token shaped loosely like an Upstox access token (opaque to clients anyway)."""
    return "sandbox-" + secrets.token_urlsafe(32)


class TokenRegistry:
    """Accepted bearer tokens; a token with ``expires_at`` is refused from that moment on.

    Naive deadlines are read as IST, the timezone Upstox states its 03:30 token expiry in. A
    token added with ``plus_plan=False`` belongs to a user without the Upstox Plus plan: it
    authenticates, but the expired-instruments API refuses it (``UDAPI1149``).
    """

    def __init__(self) -> None:
        self._tokens: dict[str, datetime | None] = {}
        self._without_plan: set[str] = set()
        self._lock = threading.Lock()

    def add(
        self, token: str, expires_at: datetime | None = None, *, plus_plan: bool = True
    ) -> None:
        """Accept ``token`` (until ``expires_at`` when given); re-adding replaces both settings."""
        if not token:
            raise ValueError("token must be a non-empty string")
        if expires_at is not None and expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=IST)
        with self._lock:
            self._tokens[token] = expires_at
            if plus_plan:
                self._without_plan.discard(token)
            else:
                self._without_plan.add(token)

    def remove(self, token: str) -> None:
        """Stop accepting ``token`` (no error if it was unknown)."""
        with self._lock:
            self._tokens.pop(token, None)
            self._without_plan.discard(token)

    def has_plus_plan(self, token: str) -> bool:
        """False for a token added with ``plus_plan=False``."""
        with self._lock:
            return token not in self._without_plan

    def is_valid(self, token: str, now: datetime | None = None) -> bool:
        """True when ``token`` is registered and its deadline, if any, has not passed."""
        with self._lock:
            if token not in self._tokens:
                return False
            deadline = self._tokens[token]
        return deadline is None or (now or datetime.now(IST)) < deadline
