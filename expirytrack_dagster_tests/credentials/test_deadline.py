"""The 03:30 IST arithmetic, JWT expiry and the human description of time left."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.credentials.deadline import (
    describe_deadline,
    format_duration,
    jwt_expiry,
    next_reset,
    token_deadline,
)


def ist(*args: int) -> datetime:
    return datetime(*args, tzinfo=IST)


def jwt(payload: dict) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(payload)}.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("issued", "deadline"),
    [
        (ist(2025, 9, 16, 20, 0), ist(2025, 9, 17, 3, 30)),  # Upstox's own example: 8 PM Tue
        (ist(2025, 9, 17, 2, 30), ist(2025, 9, 17, 3, 30)),  # …and 2:30 AM Wed: the same day
        (ist(2025, 9, 17, 3, 30), ist(2025, 9, 18, 3, 30)),  # at the reset: the next one
        (ist(2025, 9, 17, 3, 29, 59), ist(2025, 9, 17, 3, 30)),
        (ist(2025, 12, 31, 23, 0), ist(2026, 1, 1, 3, 30)),
    ],
)
def test_next_reset_is_the_first_0330_ist_after_issue(issued: datetime, deadline: datetime) -> None:
    assert next_reset(issued) == deadline


def test_next_reset_reads_other_timezones_in_ist() -> None:
    # 21:00 UTC is 02:30 IST the next day: the token dies one hour later.
    assert next_reset(datetime(2025, 9, 16, 21, 0, tzinfo=UTC)) == ist(2025, 9, 17, 3, 30)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_reset(datetime(2025, 9, 16, 21, 0))


def test_jwt_exp_is_read_and_opaque_tokens_have_none() -> None:
    exp = ist(2025, 9, 21, 3, 30)
    assert jwt_expiry(jwt({"sub": "X", "exp": int(exp.timestamp())})) == exp
    assert jwt_expiry("sandbox-abcdef") is None
    assert jwt_expiry("a.b.c") is None
    assert jwt_expiry(jwt({"sub": "X"})) is None
    assert jwt_expiry(jwt({"exp": "tomorrow"})) is None
    assert jwt_expiry(jwt({"exp": True})) is None


def test_token_deadline_by_kind() -> None:
    now = ist(2025, 9, 20, 10, 0)
    issued = ist(2025, 9, 19, 22, 0)
    assert token_deadline("opaque", "access", issued, now) == ist(2025, 9, 20, 3, 30)
    # Unknown issue time: assume it dies at the next 03:30.
    assert token_deadline("opaque", "access", None, now) == ist(2025, 9, 21, 3, 30)
    assert token_deadline("opaque", "analytics", None, now) is None
    assert token_deadline("opaque", "extended", None, now) is None
    year = now + timedelta(days=365)
    analytics = jwt({"exp": int(year.timestamp())})
    assert token_deadline(analytics, "analytics", None, now) == year.replace(microsecond=0)
    with pytest.raises(ValueError, match="kind"):
        token_deadline("opaque", "refresh", None, now)


def test_descriptions() -> None:
    now = ist(2025, 9, 20, 20, 18)
    assert (
        describe_deadline(ist(2025, 9, 21, 3, 30), now)
        == "expires 03:30 IST tomorrow (2025-09-21), in 7h 12m"
    )
    assert (
        describe_deadline(ist(2025, 9, 20, 3, 30), now)
        == "expired 03:30 IST today (2025-09-20), 16h 48m ago"
    )
    assert "no known expiry" in describe_deadline(None, now)
    assert format_duration(timedelta(days=2, hours=3, minutes=5)) == "2d 3h"
    assert format_duration(timedelta(minutes=4, seconds=10)) == "4m 10s"
    assert format_duration(timedelta(seconds=-5)) == "0s"
