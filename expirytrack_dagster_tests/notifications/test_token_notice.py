"""The token sensor's decision, at fixed times: warn once per deadline, 'dead' once per IST day."""

from __future__ import annotations

from datetime import datetime, timedelta

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.credentials.guard import ActiveToken
from expirytrack_dagster.notifications.sensors import token_notice

WITHIN = timedelta(hours=8)
DEADLINE = datetime(2025, 9, 5, 3, 30, tzinfo=IST)
TOKEN = ActiveToken("access-secret", "stored login (/creds/store)", DEADLINE, False)


def test_no_word_while_the_deadline_is_far() -> None:
    note, cursor = token_notice(TOKEN, None, {}, datetime(2025, 9, 4, 18, 0, tzinfo=IST), WITHIN)

    assert note is None and cursor == {}


def test_one_warning_per_deadline() -> None:
    now = datetime(2025, 9, 4, 20, 0, tzinfo=IST)
    note, cursor = token_notice(TOKEN, None, {}, now, WITHIN)
    again, _ = token_notice(TOKEN, None, cursor, now + timedelta(hours=1), WITHIN)

    assert note is not None and again is None
    assert note.title == "Upstox token dies in 7h 30m"
    assert note.happened == (
        f"The Upstox token {TOKEN.fingerprint} from the stored login (/creds/store) expires "
        "03:30 IST tomorrow (2025-09-05), in 7h 30m. After that no run can collect and the "
        "new-expiry sensor skips its ticks."
    )
    assert cursor == {"warned": DEADLINE.isoformat()}


def test_dead_once_a_day_then_again_the_next_day() -> None:
    morning = datetime(2025, 9, 5, 3, 40, tzinfo=IST)
    first, cursor = token_notice(TOKEN, None, {}, morning, WITHIN)
    later, cursor = token_notice(TOKEN, None, cursor, morning + timedelta(hours=12), WITHIN)
    next_day, cursor = token_notice(TOKEN, None, cursor, morning + timedelta(days=1), WITHIN)

    assert first is not None and later is None and next_day is not None
    assert first.happened.startswith(
        f"The Upstox token {TOKEN.fingerprint} from the stored login (/creds/store) expired "
        "03:30 IST today (2025-09-05), 10m 00s ago."
    )
    assert cursor == {"dead_day": "2025-09-06"}


def test_an_unreadable_store_is_named() -> None:
    now = datetime(2025, 9, 5, 9, 0, tzinfo=IST)
    note, _ = token_notice(None, "the credentials key is missing", {}, now, WITHIN)

    assert note is not None
    assert note.happened.startswith(
        "No Upstox access token is configured or stored (the credentials key is missing)."
    )


def test_a_long_lived_token_is_not_watched() -> None:
    forever = ActiveToken("analytics-secret", "stored login", None, False)

    assert token_notice(forever, None, {}, datetime(2025, 9, 5, tzinfo=IST), WITHIN) == (None, {})
