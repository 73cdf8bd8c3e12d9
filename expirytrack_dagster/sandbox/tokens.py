"""The access tokens the sandbox accepts, each with an optional deadline."""

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

    Naive deadlines are read as IST, the timezone Upstox states its 03:30 token expiry in.
    """

    def __init__(self) -> None:
        self._tokens: dict[str, datetime | None] = {}
        self._lock = threading.Lock()

    def add(self, token: str, expires_at: datetime | None = None) -> None:
        """Accept ``token`` (until ``expires_at`` when given); re-adding replaces the deadline."""
        if not token:
            raise ValueError("token must be a non-empty string")
        if expires_at is not None and expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=IST)
        with self._lock:
            self._tokens[token] = expires_at

    def remove(self, token: str) -> None:
        """Stop accepting ``token`` (no error if it was unknown)."""
        with self._lock:
            self._tokens.pop(token, None)

    def is_valid(self, token: str, now: datetime | None = None) -> bool:
        """True when ``token`` is registered and its deadline, if any, has not passed."""
        with self._lock:
            if token not in self._tokens:
                return False
            deadline = self._tokens[token]
        return deadline is None or (now or datetime.now(IST)) < deadline
