"""Typed Upstox failures: one exception class per thing a caller can do something about.

Messages carry the API's own error code and text, never the access token. Also here, because the
client and the login flow both need them: how to read an Upstox error body, and what to tell a
user whose token is missing or dead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

LOGIN_FIX = "run `expirytrack login` (or set UPSTOX_ACCESS_TOKEN to a fresh token)"
"""The one remedy for a missing or dead token, worded to follow a dash or a colon."""


def error_envelope(response: httpx.Response) -> tuple[str | None, str]:
    """``(errorCode, message)`` of an Upstox error answer.

    Upstox answers failures as ``{"status": "error", "errors": [{"errorCode": ..., "message":
    ...}]}`` (some endpoints spell it ``error_code``). A body of another shape (an HTML page from a
    proxy, say) gives ``(None, "<reason> (body is not an Upstox error envelope)")``.
    """
    try:
        first = response.json()["errors"][0]
        code = first.get("errorCode") or first.get("error_code")
        return code, str(first.get("message") or "no message")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None, f"{response.reason_phrase or 'error'} (body is not an Upstox error envelope)"


class UpstoxError(Exception):
    """Base class. ``code`` is the Upstox error code (e.g. ``UDAPI100050``) when the API sent one."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        self.message = message
        self.code = code
        self.status = status
        prefix = " ".join(p for p in (f"HTTP {status}" if status else None, code) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class TokenExpired(UpstoxError):
    """401: the access token is missing, invalid or past its 03:30 IST deadline.

    Upstox has no refresh token; the fix is ``LOGIN_FIX``: a new login or a new
    ``UPSTOX_ACCESS_TOKEN``.
    """


class PlanRequired(UpstoxError):
    """``UDAPI1149``: the expired-instruments API needs an Upstox Plus subscription."""


class InvalidRequest(UpstoxError):
    """A 4xx input error (bad key, bad date, unknown instrument). Retrying cannot help."""


class InvalidDateRange(InvalidRequest):
    """The requested span is longer than the API serves in one call for that interval."""


class RateLimited(UpstoxError):
    """429 ``UDAPI10005`` kept coming back after every retry."""


class UpstoxUnavailable(UpstoxError):
    """5xx answers, timeouts or dropped connections persisted through every retry."""


class CircuitOpen(UpstoxUnavailable):
    """Too many consecutive failures: requests are refused locally until the cool-down ends."""


class MalformedResponse(UpstoxError):
    """The API answered, but the body is not the JSON shape Upstox documents."""
