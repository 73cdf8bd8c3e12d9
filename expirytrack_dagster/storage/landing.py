"""The landing zone: one Parquet file per fetched contract, the durable checkpoint before DuckDB.

Candles land here the moment a contract's download finishes (written to a temporary name, then
renamed, so a file is either whole or absent). A retried or re-run partition reads what landed
instead of asking Upstox again; the DuckDB write then publishes the whole partition in one
transaction. A contract whose download failed leaves a small ``.failed.json`` note instead, and is
tried again next time.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from expirytrack_dagster.upstox.models import CANDLE_COLUMNS

CANDLE_FILE_COLUMNS: tuple[str, ...] = (
    "partition_key",
    "expired_instrument_key",
    "interval",
    *CANDLE_COLUMNS,
)
_OUTCOME_KEY = b"expirytrack.outcome"


@dataclass(frozen=True)
class LandedContract:
    """What the landing zone knows about one contract of a partition."""

    expired_instrument_key: str
    path: Path
    from_date: date
    to_date: date
    candle_count: int
    fetched_at: datetime


@dataclass(frozen=True)
class FailedContract:
    """A contract whose download failed, with the error to report."""

    expired_instrument_key: str
    error: str
    failed_at: datetime


def _file_stem(expired_instrument_key: str) -> str:
    # Keys look like NSE_FO|64103|28-08-2025: '|' is not welcome in file names.
    return expired_instrument_key.replace("|", "__")


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
        from_date: date,
        to_date: date,
    ) -> LandedContract:
        """Land a contract's candles (zero rows is a valid 'no trades' answer), atomically."""
        path, failed = self._paths(partition_key, expired_instrument_key)
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = candles.assign(
            partition_key=partition_key,
            expired_instrument_key=expired_instrument_key,
            interval=self.interval,
        )[list(CANDLE_FILE_COLUMNS)]
        fetched_at = datetime.now(UTC)
        outcome = {
            "expired_instrument_key": expired_instrument_key,
            "from_date": from_date.isoformat(),
            "to_date": to_date.isoformat(),
            "candle_count": len(frame),
            "fetched_at": fetched_at.isoformat(),
        }
        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), _OUTCOME_KEY: json.dumps(outcome).encode()}
        )
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
        failed.unlink(missing_ok=True)
        return LandedContract(
            expired_instrument_key, path, from_date, to_date, len(frame), fetched_at
        )

    def save_failure(self, partition_key: str, expired_instrument_key: str, error: str) -> None:
        """Note that a contract's download failed (its earlier landed file, if any, is kept)."""
        _, failed = self._paths(partition_key, expired_instrument_key)
        failed.parent.mkdir(parents=True, exist_ok=True)
        note = {"error": error, "failed_at": datetime.now(UTC).isoformat()}
        tmp = failed.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(note))
        os.replace(tmp, failed)

    def landed(self, partition_key: str, expired_instrument_key: str) -> LandedContract | None:
        """The contract's landed file, or None when it never landed."""
        path, _ = self._paths(partition_key, expired_instrument_key)
        if not path.exists():
            return None
        meta = pq.read_schema(path).metadata or {}
        outcome = json.loads(meta[_OUTCOME_KEY])
        return LandedContract(
            expired_instrument_key,
            path,
            date.fromisoformat(outcome["from_date"]),
            date.fromisoformat(outcome["to_date"]),
            int(outcome["candle_count"]),
            datetime.fromisoformat(outcome["fetched_at"]),
        )

    def failure(self, partition_key: str, expired_instrument_key: str) -> FailedContract | None:
        """The contract's last download failure, or None."""
        _, failed = self._paths(partition_key, expired_instrument_key)
        if not failed.exists():
            return None
        note = json.loads(failed.read_text())
        return FailedContract(
            expired_instrument_key, note["error"], datetime.fromisoformat(note["failed_at"])
        )
