"""The landing zone: one Parquet file per contract with its candles and what each day's answer was.

Candles land here the moment a contract's requests finish (written to a temporary name, then
renamed, so a file is either whole or absent). Beside the candles, the file's metadata records per
trading day how it was answered (:class:`DayRecord`): ``complete`` or ``no_trades`` (final: asked
at a verified span), ``unconfirmed`` (asked at a span not yet verified) or ``failed`` (with the
error). A later run fetches again only days that are not final; the DuckDB write then publishes
the whole partition in one transaction.

Files written before day records existed (version 1) are read as ``unconfirmed`` days asked at
:data:`LEGACY_SPAN_DAYS`: they become final without a request once that span is verified, and
are fetched again otherwise. Every save drops identical duplicate candles.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from expirytrack_dagster.upstox.models import CANDLE_COLUMNS, empty_candles

CANDLE_FILE_COLUMNS: tuple[str, ...] = (
    "partition_key",
    "expired_instrument_key",
    "interval",
    *CANDLE_COLUMNS,
)
_OUTCOME_KEY = b"expirytrack.outcome"
LANDING_VERSION = 2

FINAL_STATUSES = ("complete", "no_trades")
DAY_STATUSES = ("complete", "no_trades", "unconfirmed", "failed")
"""``complete``: candles, asked at a verified span; ``no_trades``: none, asked at a verified span;
``unconfirmed``: asked at a span not (yet) verified; ``failed``: the request failed."""

LEGACY_SPAN_DAYS = 30
"""The longest request the client made before spans were verified (its default 1-minute
window). Version-1 files are trusted once a span at least this long is verified."""


@dataclass(frozen=True)
class DayRecord:
    """How one trading day of one contract was answered."""

    status: str
    span_days: int | None  # the span of the request that answered it (None: it failed)
    error: str | None
    fetched_at: datetime

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    def as_json(self) -> list:
        return [self.status, self.span_days, self.error, self.fetched_at.isoformat()]

    @classmethod
    def from_json(cls, raw: list) -> DayRecord:
        status, span, error, fetched = raw
        return cls(status, span, error, datetime.fromisoformat(fetched))


@dataclass(frozen=True)
class LandedContract:
    """What the landing zone holds for one contract of a partition."""

    expired_instrument_key: str
    path: Path
    days: Mapping[date, DayRecord]
    candle_count: int
    version: int
    duplicates_collapsed: int = 0

    @property
    def fetched_at(self) -> datetime | None:
        stamps = [r.fetched_at for r in self.days.values()]
        return max(stamps) if stamps else None


def _file_stem(expired_instrument_key: str) -> str:
    # Keys look like NSE_FO|64103|28-08-2025: '|' is not welcome in file names.
    return expired_instrument_key.replace("|", "__")


def drop_identical_duplicates(candles: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``candles`` without rows that repeat an earlier row exactly, and how many were dropped."""
    if candles.empty:
        return candles, 0
    repeated = candles.duplicated(keep="first")
    count = int(repeated.sum())
    if count:
        candles = candles.loc[~repeated].reset_index(drop=True)
    return candles, count


def _trading_dates(stamps: pd.Series) -> pd.Series:
    return stamps.dt.tz_convert("Asia/Kolkata").dt.date


class CandleLanding:
    """Landed candles under ``root/<interval>/<partition_key>/``."""

    def __init__(self, root: Path | str, interval: str) -> None:
        self.root = Path(root)
        self.interval = interval

    def partition_dir(self, partition_key: str) -> Path:
        return self.root / self.interval / partition_key

    def _paths(self, partition_key: str, expired_instrument_key: str) -> tuple[Path, Path]:
        base = self.partition_dir(partition_key) / _file_stem(expired_instrument_key)
        return base.with_suffix(".parquet"), base.with_suffix(".failed.json")

    def save(
        self,
        partition_key: str,
        expired_instrument_key: str,
        candles: pd.DataFrame,
        days: Mapping[date, DayRecord],
        duplicates_collapsed: int = 0,
    ) -> LandedContract:
        """Land a contract's candles and day records atomically (zero candles is valid).

        Identical duplicate candles are dropped here, so no file ever holds one.
        """
        path, legacy_failure = self._paths(partition_key, expired_instrument_key)
        path.parent.mkdir(parents=True, exist_ok=True)
        candles, dropped = drop_identical_duplicates(candles[list(CANDLE_COLUMNS)])
        candles = candles.sort_values("timestamp", kind="stable").reset_index(drop=True)
        frame = candles.assign(
            partition_key=partition_key,
            expired_instrument_key=expired_instrument_key,
            interval=self.interval,
        )[list(CANDLE_FILE_COLUMNS)]
        outcome = {
            "version": LANDING_VERSION,
            "expired_instrument_key": expired_instrument_key,
            "candle_count": len(frame),
            "duplicates_collapsed": duplicates_collapsed + dropped,
            "days": {day.isoformat(): record.as_json() for day, record in sorted(days.items())},
        }
        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), _OUTCOME_KEY: json.dumps(outcome).encode()}
        )
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
        legacy_failure.unlink(missing_ok=True)
        return LandedContract(
            expired_instrument_key,
            path,
            dict(days),
            len(frame),
            LANDING_VERSION,
            duplicates_collapsed + dropped,
        )

    def load(
        self, partition_key: str, expired_instrument_key: str, window_days: Iterable[date]
    ) -> LandedContract | None:
        """The contract's landed file and day records, or None when nothing landed.

        ``window_days`` are the partition's trading days: a version-1 file answered all of them
        (at an unverified span), a version-1 failure note failed all of them.
        """
        path, legacy_failure = self._paths(partition_key, expired_instrument_key)
        if path.exists():
            meta = pq.read_schema(path).metadata or {}
            outcome = json.loads(meta[_OUTCOME_KEY])
            if outcome.get("version", 1) >= 2:
                days = {
                    date.fromisoformat(day): DayRecord.from_json(raw)
                    for day, raw in outcome["days"].items()
                }
                return LandedContract(
                    expired_instrument_key,
                    path,
                    days,
                    int(outcome["candle_count"]),
                    int(outcome["version"]),
                    int(outcome.get("duplicates_collapsed", 0)),
                )
            fetched = datetime.fromisoformat(outcome["fetched_at"])
            first = date.fromisoformat(outcome["from_date"])
            last = date.fromisoformat(outcome["to_date"])
            record = DayRecord("unconfirmed", LEGACY_SPAN_DAYS, None, fetched)
            days = {day: record for day in window_days if first <= day <= last}
            return LandedContract(
                expired_instrument_key, path, days, int(outcome["candle_count"]), 1
            )
        if legacy_failure.exists():
            note = json.loads(legacy_failure.read_text())
            record = DayRecord(
                "failed", None, note["error"], datetime.fromisoformat(note["failed_at"])
            )
            return LandedContract(
                expired_instrument_key, path, dict.fromkeys(window_days, record), 0, 1
            )
        return None

    def candles(self, landed: LandedContract) -> pd.DataFrame:
        """The candles of a landed contract (ascending, IST), as the client parsed them."""
        if not landed.path.exists():
            return empty_candles()
        frame = pd.read_parquet(landed.path, columns=list(CANDLE_COLUMNS))
        frame["timestamp"] = frame["timestamp"].dt.tz_convert("Asia/Kolkata")
        return frame

    def candles_per_day(self, landed: LandedContract) -> dict[date, int]:
        """Stored candles per trading date (IST) in the landed file."""
        if not landed.candle_count or not landed.path.exists():
            return {}
        stamps = pd.read_parquet(landed.path, columns=["timestamp"])["timestamp"]
        return _trading_dates(stamps).value_counts().to_dict()

    def files(self, partition_key: str) -> list[Path]:
        """Every landed candle file of the partition."""
        directory = self.partition_dir(partition_key)
        return sorted(directory.glob("*.parquet")) if directory.exists() else []
