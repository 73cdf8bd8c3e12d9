"""Typed Upstox failures: one exception class per thing a caller can do something about.

Messages carry the API's own error code and text, never the access token.
"""

from __future__ import annotations


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

    Upstox has no refresh token; the fix is a new login (``expirytrack login``) or a new
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
