"""Date windows for candle requests, and the persisted memory of the largest span that worked.

Upstox does not document how many days one historical-candle request may span. Too small a window
wastes the scarce request budget; too large gets an "Invalid date range" error or, worse, a silently
truncated answer. The client therefore starts from a per-interval setting and learns: a range error
or a detected truncation records the failing span, a clean answer records the span that worked, and
later runs (other processes too) start from the largest span known to work.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

from expirytrack_dagster.calendar import is_trading_day

DEFAULT_MAX_SPAN_DAYS: Mapping[str, int] = {
    "1minute": 30,
    "3minute": 30,
    "5minute": 30,
    "15minute": 30,
    "30minute": 365,
    "day": 365,
}
"""Starting span per interval, in calendar days (inclusive): at most one calendar month up to
15-minute candles, a year above that. Settings, not facts: the real maximum is undocumented."""


def span_days(start: date, end: date) -> int:
    """Calendar days from ``start`` to ``end``, both inclusive."""
    return (end - start).days + 1


def split_windows(start: date, end: date, max_days: int) -> list[tuple[date, date]]:
    """Consecutive inclusive windows of at most ``max_days`` covering ``start``..``end``.

    Windows holding no trading day are dropped: asking for a weekend spends budget for nothing.
    """
    if max_days < 1:
        raise ValueError(f"max_days must be at least 1, got {max_days}")
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    windows: list[tuple[date, date]] = []
    cursor = start
    while cursor <= end:
        stop = min(end, cursor + timedelta(days=max_days - 1))
        day = cursor
        while day <= stop and not is_trading_day(day):
            day += timedelta(days=1)
        if day <= stop:
            windows.append((cursor, stop))
        cursor = stop + timedelta(days=1)
    return windows


class WindowMemory:
    """Per (API host, interval): the largest span that answered fully, the smallest that did not.

    Stored in a small SQLite file so every run, step and the sensor share what was learned.
    """

    def __init__(self, path: Path, defaults: Mapping[str, int] | None = None) -> None:
        self.path = path
        self.defaults = dict(DEFAULT_MAX_SPAN_DAYS if defaults is None else defaults)
        self._seen: dict[tuple[str, str], tuple[int | None, int | None]] = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS window_spans ("
                " host TEXT NOT NULL, interval TEXT NOT NULL,"
                " max_ok_days INTEGER, min_bad_days INTEGER, updated_at REAL NOT NULL,"
                " PRIMARY KEY (host, interval))"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    def _row(self, host: str, interval: str) -> tuple[int | None, int | None]:
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT max_ok_days, min_bad_days FROM window_spans WHERE host=? AND interval=?",
                (host, interval),
            ).fetchone()
        known = (row[0], row[1]) if row else (None, None)
        self._seen[(host, interval)] = known
        return known

    def start_span(self, host: str, interval: str) -> int:
        """The span to try first: the setting, or the largest known-good span below a failure."""
        setting = self.defaults.get(interval, 30)
        max_ok, min_bad = self._row(host, interval)
        if min_bad is None:
            return setting
        if max_ok is not None and max_ok < min_bad:
            return min(setting, max_ok)
        return max(1, min(setting, min_bad // 2))

    def record_ok(self, host: str, interval: str, days: int) -> None:
        """A window of ``days`` answered in full."""
        max_ok, min_bad = self._seen.get((host, interval), (None, None))
        if max_ok is not None and days <= max_ok and (min_bad is None or days < min_bad):
            return  # nothing new: spare the write on every successful window
        self._upsert(host, interval, ok=days)

    def record_too_long(self, host: str, interval: str, days: int) -> None:
        """A window of ``days`` was refused or truncated."""
        self._upsert(host, interval, bad=days)

    def learned(self, host: str, interval: str) -> dict[str, int | None]:
        """What is known for this interval (for logs and run metadata)."""
        max_ok, min_bad = self._row(host, interval)
        return {"max_ok_days": max_ok, "min_bad_days": min_bad}

    def _upsert(
        self, host: str, interval: str, ok: int | None = None, bad: int | None = None
    ) -> None:
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT max_ok_days, min_bad_days FROM window_spans WHERE host=? AND interval=?",
                (host, interval),
            ).fetchone()
            max_ok, min_bad = (row[0], row[1]) if row else (None, None)
            if bad is not None:
                min_bad = bad if min_bad is None else min(min_bad, bad)
                if max_ok is not None and max_ok >= min_bad:
                    max_ok = None  # the API's limit went down: what worked before is void
            if ok is not None:
                max_ok = ok if max_ok is None else max(max_ok, ok)
                if min_bad is not None and ok >= min_bad:
                    min_bad = None  # the API's limit went up
            db.execute(
                "INSERT INTO window_spans (host, interval, max_ok_days, min_bad_days, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (host, interval) DO UPDATE SET"
                " max_ok_days=excluded.max_ok_days, min_bad_days=excluded.min_bad_days,"
                " updated_at=excluded.updated_at",
                (host, interval, max_ok, min_bad, time.time()),
            )
            db.execute("COMMIT")
        self._seen[(host, interval)] = (max_ok, min_bad)
