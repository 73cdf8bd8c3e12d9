"""Bar dates and times as text: the IST wall clock, equal to strftime's, across UTC midnight."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pyarrow as pa

from expirytrack_dagster.exports.bar_text import ist_date_text, ist_time_text

IST = ZoneInfo("Asia/Kolkata")


def test_dates_and_times_are_ist_wall_clock_text() -> None:
    # 18:29 to 18:31 UTC is 23:59 to 00:01 IST: the IST date turns while the UTC date does not.
    start = datetime(2025, 12, 31, 18, 29, tzinfo=ZoneInfo("UTC"))
    moments = [start + timedelta(minutes=m) for m in range(3)] + [
        datetime(2025, 8, 14, 9, 15, tzinfo=IST),
        datetime(2025, 8, 14, 15, 29, tzinfo=IST),
    ]
    stamps = pa.array(moments, pa.timestamp("us", tz="Asia/Kolkata"))
    assert ist_date_text(stamps).to_pylist() == [
        "2025-12-31",
        "2026-01-01",
        "2026-01-01",
        "2025-08-14",
        "2025-08-14",
    ]
    assert ist_date_text(stamps, ".").to_pylist()[1] == "2026.01.01"
    assert ist_time_text(stamps).to_pylist() == [
        "23:59:00",
        "00:00:00",
        "00:01:00",
        "09:15:00",
        "15:29:00",
    ]
    want = [m.astimezone(IST) for m in moments]
    assert ist_date_text(stamps).to_pylist() == [m.strftime("%Y-%m-%d") for m in want]
    assert ist_time_text(stamps).to_pylist() == [m.strftime("%H:%M:%S") for m in want]
