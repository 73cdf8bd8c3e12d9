"""The snapshot store: one DuckDB file per session day, ``<live_dir>/<YYYY-MM-DD>.duckdb``.

Why its own files: DuckDB allows one writing process per file, and the candle database's writer
is the collection runs'. Live capture writes a minute's rows every minute for six hours; in the
candle file it would wait behind (or block) every backfill step. A file per session day has
exactly one writer (that day's capture run), holds its lock only for the few milliseconds of
one minute's transaction, and is the only file the tracker view needs (OI changes are measured
inside one session). Past days are never written again.

Tables:

- ``option_snapshots``: one row per option leg per capture minute (``upstox.live.SNAPSHOT_COLUMNS``),
  primary key ``(captured_at, underlying_symbol, expiry, instrument_key)``: a minute can never be
  stored twice.
- ``capture_log``: one row per (capture minute, underlying, expiry) that was stored, with its row
  count. A restarted run reads it to continue from the next minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd

from expirytrack_dagster.storage import database
from expirytrack_dagster.upstox.live import SNAPSHOT_COLUMNS

SNAPSHOT_TABLE = "option_snapshots"
LOG_TABLE = "capture_log"

_SQL_TYPES = {
    "datetime64[ns, Asia/Kolkata]": "TIMESTAMPTZ",
    "string": "VARCHAR",
    "object": "DATE",
    "float64": "DOUBLE",
    "Float64": "DOUBLE",
    "Int64": "BIGINT",
}
_KEY = ("captured_at", "underlying_symbol", "expiry", "instrument_key")
LOCK_WAIT_S = 25.0
"""How long a capture or view waits for the other side's connection to close."""


def session_file(live_dir: str | Path, day: date) -> Path:
    """The snapshot file of one session day."""
    return Path(live_dir) / f"{day.isoformat()}.duckdb"


def _schema() -> str:
    columns = ", ".join(f'"{name}" {_SQL_TYPES[dtype]}' for name, dtype in SNAPSHOT_COLUMNS.items())
    key = ", ".join(_KEY)
    return (
        f"CREATE TABLE IF NOT EXISTS {SNAPSHOT_TABLE} ({columns}, PRIMARY KEY ({key}));"
        f"CREATE TABLE IF NOT EXISTS {LOG_TABLE} (captured_at TIMESTAMPTZ, "
        "underlying_symbol VARCHAR, expiry DATE, rows_stored INTEGER, "
        "PRIMARY KEY (captured_at, underlying_symbol, expiry));"
    )


@contextmanager
def connect(path: Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection (IST session time zone), retried while the other side holds the
    file: the capture writes for a few ms a minute, the view reads for a few ms a refresh."""
    with database.connect(
        path, read_only=read_only, lock_timeout_s=LOCK_WAIT_S, collection_schema=False
    ) as conn:
        yield conn


class SnapshotStore:
    """The snapshot file of one session day."""

    def __init__(self, live_dir: str | Path, day: date):
        self.day = day
        self.path = session_file(live_dir, day)

    def captured(self) -> set[tuple[datetime, str, date]]:
        """``(capture minute, underlying, expiry)`` of everything stored so far."""
        if not self.path.exists():
            return set()
        with connect(self.path, read_only=True) as conn:
            rows = conn.execute(
                f"SELECT captured_at, underlying_symbol, expiry FROM {LOG_TABLE}"
            ).fetchall()
        return {(pd.Timestamp(a).to_pydatetime(), s, e) for a, s, e in rows}

    def write_minute(self, frames: list[tuple[str, date, pd.DataFrame]], minute: datetime) -> int:
        """Store one capture minute's chains in one transaction; returns the rows stored.

        A chain already logged for that minute is skipped (a retried write stores nothing twice).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with connect(self.path) as conn:
            conn.execute(_schema())
            conn.execute("BEGIN")
            logged = {
                (symbol, expiry)
                for symbol, expiry in conn.execute(
                    f"SELECT underlying_symbol, expiry FROM {LOG_TABLE} WHERE captured_at = ?",
                    [minute],
                ).fetchall()
            }
            new = [(s, e, f) for s, e, f in frames if (s, e) not in logged]
            if new:
                chains = pd.concat([f for _, _, f in new], ignore_index=True)
                conn.register("chain_frame", chains)
                conn.execute(
                    f"INSERT INTO {SNAPSHOT_TABLE} SELECT * FROM chain_frame ON CONFLICT DO NOTHING"
                )
                conn.unregister("chain_frame")
                conn.executemany(
                    f"INSERT INTO {LOG_TABLE} VALUES (?, ?, ?, ?)",
                    [[minute, s, e, len(f)] for s, e, f in new],
                )
            conn.execute("COMMIT")
        return sum(len(f) for _, _, f in new)

    def snapshots(self) -> pd.DataFrame:
        """Every stored row of the day, ordered by minute, underlying, expiry, strike, type."""
        if not self.path.exists():
            return pd.DataFrame(columns=list(SNAPSHOT_COLUMNS))
        with connect(self.path, read_only=True) as conn:
            return conn.execute(
                f"SELECT * FROM {SNAPSHOT_TABLE} ORDER BY captured_at, underlying_symbol, "
                "expiry, strike_price, option_type"
            ).df()
