"""The live capture's partition scheme: one partition per calendar day in IST, keys ``YYYY-MM-DD``.

A ``DailyPartitionsDefinition`` in Asia/Kolkata rather than a custom list of sessions: its keys
are plain dates the UI shows on a calendar, it needs no registration step, and special sessions
(Muhurat, a Saturday session) are simply their day. Holidays and weekends are partitions that
never get a run: the schedule asks the trading calendar (``calendar.session_for``) and skips
them, and a run on one by hand stores nothing and says so. ``end_offset=1`` makes today a
partition, since a session is captured while it happens.
"""

from __future__ import annotations

from datetime import date

from dagster import DailyPartitionsDefinition

LIVE_START_DATE = "2026-01-01"

session_day_partitions = DailyPartitionsDefinition(
    start_date=LIVE_START_DATE, timezone="Asia/Kolkata", end_offset=1
)


def session_day(partition_key: str) -> date:
    """The session day a partition key names."""
    return date.fromisoformat(partition_key)
