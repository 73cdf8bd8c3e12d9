"""One window's answer into day records: duplicates kept once, conflicts failed, strays dropped."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd

from expirytrack_dagster.collection.answers import clean_answer, failed_days, merge_days
from expirytrack_dagster.storage.landing import DayRecord
from expirytrack_dagster_tests.storage.test_io_manager import candles_frame

KEY = "NSE_FO|64103|28-08-2025"
NOW = datetime(2025, 9, 1, tzinfo=UTC)
START, END = date(2025, 8, 18), date(2025, 8, 22)  # Mon .. Fri


def test_identical_duplicates_are_collapsed_and_counted() -> None:
    day = candles_frame("2025-08-19 09:15", 5, 100.0)
    answer = clean_answer(
        KEY,
        pd.concat([day, day.iloc[[1, 1]]]),
        START,
        END,
        span_days=5,
        verified=True,
        fetched_at=NOW,
    )
    assert answer.duplicates == 2 and len(answer.candles) == 5
    assert answer.days[date(2025, 8, 19)].status == "complete"
    assert answer.days[date(2025, 8, 18)].status == "no_trades"
    assert set(answer.days) == {date(2025, 8, d) for d in range(18, 23)}


def test_a_conflicting_minute_fails_its_day_naming_contract_and_minute() -> None:
    monday = candles_frame("2025-08-18 09:15", 3, 100.0)
    tuesday = candles_frame("2025-08-19 09:15", 3, 100.0)
    clash = tuesday.iloc[[2]].assign(close=101.0)
    answer = clean_answer(
        KEY,
        pd.concat([monday, tuesday, clash]),
        START,
        END,
        span_days=5,
        verified=True,
        fetched_at=NOW,
    )
    record = answer.days[date(2025, 8, 19)]
    assert record.status == "failed"
    assert KEY in record.error and "2025-08-19T09:17:00+05:30" in record.error
    assert answer.days[date(2025, 8, 18)].status == "complete"
    assert len(answer.candles) == 3  # Tuesday's candles are not kept


def test_candles_outside_the_window_are_dropped_and_unverified_days_stay_unconfirmed() -> None:
    inside = candles_frame("2025-08-20 09:15", 4, 100.0)
    stray = candles_frame("2025-08-25 09:15", 2, 100.0)
    answer = clean_answer(
        KEY,
        pd.concat([inside, stray]),
        START,
        END,
        span_days=31,
        verified=False,
        fetched_at=NOW,
    )
    assert answer.outside_window == 2 and len(answer.candles) == 4
    assert {r.status for r in answer.days.values()} == {"unconfirmed"}
    assert {r.span_days for r in answer.days.values()} == {31}


def test_merge_replaces_answered_days_and_never_lets_a_failure_erase_an_answer() -> None:
    old = pd.concat(
        [candles_frame("2025-08-18 09:15", 2, 90.0), candles_frame("2025-08-19 09:15", 2, 90.0)]
    )
    old_days = {
        date(2025, 8, 18): DayRecord("complete", 93, None, NOW),
        date(2025, 8, 19): DayRecord("unconfirmed", 93, None, NOW),
    }
    new = clean_answer(
        KEY,
        candles_frame("2025-08-19 09:15", 5, 100.0),
        date(2025, 8, 19),
        date(2025, 8, 19),
        span_days=1,
        verified=True,
        fetched_at=NOW,
    )
    failures = failed_days(date(2025, 8, 18), date(2025, 8, 20), "HTTP 500", NOW)
    candles, days, dropped = merge_days(old, old_days, [new], failures)
    assert dropped == 0
    assert days[date(2025, 8, 18)].status == "complete"  # kept, not failed
    assert days[date(2025, 8, 19)].status == "complete"
    assert days[date(2025, 8, 20)].status == "failed"
    stamps = candles["timestamp"].dt.date
    assert (stamps == date(2025, 8, 19)).sum() == 5 and (stamps == date(2025, 8, 18)).sum() == 2
