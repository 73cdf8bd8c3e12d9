"""When an Upstox token dies: 03:30 IST after it was issued, or its own JWT ``exp`` when it has one."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, date, datetime, time, timedelta

from expirytrack_dagster.calendar import IST

TOKEN_RESET = time(3, 30)
"""Upstox access tokens stop working at this IST time, the first one after they were issued."""

TOKEN_KINDS = ("access", "extended", "analytics")
"""``access``: the daily OAuth token; ``extended``/``analytics``: long-lived read-only tokens."""


def next_reset(after: datetime) -> datetime:
    """The first 03:30 IST strictly after ``after`` (issued 02:30 → 03:30 the same day, as Upstox documents)."""
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    local = after.astimezone(IST)
    reset = datetime.combine(local.date(), TOKEN_RESET, tzinfo=IST)
    return reset if reset > local else reset + timedelta(days=1)


def jwt_expiry(token: str) -> datetime | None:
    """The ``exp`` claim of a JWT-shaped token, or None when the token is opaque.

    Only the payload is read and the signature is not checked: the claim is used to warn early,
    never to grant anything (the API still decides).
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        exp = json.loads(payload).get("exp")
    except (ValueError, binascii.Error, AttributeError):
        return None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    try:
        return datetime.fromtimestamp(exp, UTC).astimezone(IST)
    except (OverflowError, OSError, ValueError):
        return None


def token_deadline(
    token: str, kind: str, issued_at: datetime | None, now: datetime
) -> datetime | None:
    """When ``token`` stops working, or None when that cannot be known (a long-lived token).

    The token's own ``exp`` wins; otherwise an access token dies at the 03:30 IST after
    ``issued_at``, and with an unknown issue time at the next 03:30 after ``now``.
    """
    if kind not in TOKEN_KINDS:
        raise ValueError(f"token kind must be one of {', '.join(TOKEN_KINDS)}, not {kind!r}")
    expiry = jwt_expiry(token)
    if expiry is not None:
        return expiry
    if kind == "access":
        return next_reset(issued_at or now)
    return None


def format_duration(span: timedelta) -> str:
    """``2d 3h``, ``7h 12m``, ``4m 10s`` or ``12s``: the two largest units, rounded down."""
    seconds = max(0, int(span.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {seconds:02d}s"
    return f"{seconds}s"


def _day_word(day: date, today: date) -> str:
    names = {
        today - timedelta(days=1): "yesterday",
        today: "today",
        today + timedelta(days=1): "tomorrow",
    }
    return names.get(day, day.strftime("%a %d %b %Y"))


def describe_deadline(deadline: datetime | None, now: datetime) -> str:
    """``expires 03:30 IST tomorrow (2025-09-21), in 7h 12m`` or ``expired … ago``; no secrets."""
    if deadline is None:
        return "no known expiry (a long-lived token: the API will say when it stops working)"
    local, today = deadline.astimezone(IST), now.astimezone(IST).date()
    when = f"{local:%H:%M} IST {_day_word(local.date(), today)} ({local.date().isoformat()})"
    if deadline <= now:
        return f"expired {when}, {format_duration(now - deadline)} ago"
    return f"expires {when}, in {format_duration(deadline - now)}"
