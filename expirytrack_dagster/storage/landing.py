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

A partition whose every day is final can be compacted (:meth:`CandleLanding.compact`) into one
file, ``_partition.parquet``, holding every contract's candles and day records; ``load``,
``candles`` and ``files`` read it as they read per-contract files, and the database can be
rebuilt from it. Saving a contract of a compacted partition again (``force_refetch``) moves that
contract back to a file of its own.

A partition verified complete and published (``ops.prune``) can be pruned
(:meth:`CandleLanding.prune`): its candle files go, and one small file, ``_pruned.json.gz``, keeps
every contract's day records, its candle counts and the rows and checksum that were verified. Its
candles then live only in the database: ``load`` still answers every day as final, so a re-run
asks for nothing, but reading, saving or rebuilding its candles raises :class:`PartitionPruned`.
The record is written (atomically) before any candle file is removed, and a leftover candle file
beside a record is removed on the next read: a crash leaves the files or a pruned partition.
"""

from __future__ import annotations

import functools
import gzip
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from expirytrack_dagster.atomic_write import atomic_write
from expirytrack_dagster.calendar import IST, ist_day_counts
from expirytrack_dagster.upstox.models import CANDLE_COLUMNS, empty_candles

_F = TypeVar("_F", bound=Callable[..., Any])

CANDLE_FILE_COLUMNS: tuple[str, ...] = (
    "partition_key",
    "expired_instrument_key",
    "interval",
    *CANDLE_COLUMNS,
)
_OUTCOME_KEY = b"expirytrack.outcome"
_CONTRACTS_KEY = b"expirytrack.contracts"
LANDING_VERSION = 2
COMPACTED_NAME = "_partition.parquet"
"""The one file of a compacted partition (no contract's file name starts with ``_``)."""
COMPACTION_LEVEL = 9
"""zstd level of compacted files: written once per partition, read rarely."""
COMPACTED_ENCODINGS = {
    **dict.fromkeys(("open", "high", "low", "close"), "BYTE_STREAM_SPLIT"),
    **dict.fromkeys(("timestamp", "volume", "open_interest"), "DELTA_BINARY_PACKED"),
}
"""Parquet encodings of compacted files: prices split by byte, minute stamps and counts as
deltas; with zstd about 11 bytes per candle on sandbox data (per-contract files: about 14)."""

PRUNED_NAME = "_pruned.json.gz"
"""The day records of a pruned partition, gzipped JSON (its candles live only in the database)."""
PRUNED_VERSION = 1

FINAL_STATUSES = ("complete", "no_trades")
DAY_STATUSES = ("complete", "no_trades", "unconfirmed", "failed")
"""``complete``: candles, asked at a verified span; ``no_trades``: none, asked at a verified span;
``unconfirmed``: asked at a span not (yet) verified; ``failed``: the request failed."""

LEGACY_SPAN_DAYS = 30
"""The longest request the client made before spans were verified (its default 1-minute
window). Version-1 files are trusted once a span at least this long is verified."""


class PartitionPruned(RuntimeError):
    """The partition's landing was pruned: its candles live only in the database."""

    def __init__(self, partition_key: str, doing: str) -> None:
        super().__init__(
            f"{partition_key}: cannot {doing}: its landing files were pruned (landing_retention: "
            "prune_verified, or `expirytrack prune-landing`) after it was verified complete, so "
            "its candles live only in the database and nothing is left to collect. To collect it "
            f"again (this spends API budget), run `expirytrack delete {partition_key}` first."
        )
        self.partition_key = partition_key


@dataclass(frozen=True)
class PrunedRecord:
    """What a pruned partition's record says: when, and what the database held then."""

    partition_key: str
    pruned_at: datetime
    candle_rows: int
    checksum: str  # sum of row hashes, as ``ops.prune`` computes it on both sides
    landing_bytes: int  # what the removed candle files held
    contracts: int


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
    day_candles: Mapping[date, int] | None = None  # candles per trading day, when recorded
    pruned: bool = False  # the candles were pruned from the landing (``path`` is the record)

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
    if "timestamp" in candles and candles["timestamp"].is_unique:
        return candles, 0  # rows repeat only where stamps do; one column is far cheaper to test
    repeated = candles.duplicated(keep="first")
    count = int(repeated.sum())
    if count:
        candles = candles.loc[~repeated].reset_index(drop=True)
    return candles, count


def _outcome_json(
    key: str, frame: pd.DataFrame, days: Mapping[date, DayRecord], duplicates: int
) -> dict:
    per_day = ist_day_counts(frame["timestamp"]) if len(frame) else {}
    return {
        "version": LANDING_VERSION,
        "expired_instrument_key": key,
        "candle_count": len(frame),
        "duplicates_collapsed": duplicates,
        "days": {day.isoformat(): record.as_json() for day, record in sorted(days.items())},
        "day_candles": {day.isoformat(): int(n) for day, n in sorted(per_day.items())},
    }


def _landed_from_outcome(path: Path, outcome: Mapping, pruned: bool = False) -> LandedContract:
    counts = outcome.get("day_candles")
    return LandedContract(
        outcome["expired_instrument_key"],
        path,
        {date.fromisoformat(day): DayRecord.from_json(raw) for day, raw in outcome["days"].items()},
        int(outcome["candle_count"]),
        int(outcome["version"]),
        int(outcome.get("duplicates_collapsed", 0)),
        None if counts is None else {date.fromisoformat(d): int(n) for d, n in counts.items()},
        pruned,
    )


_FILE_SCHEMAS: dict[tuple[tuple[str, str], ...], pa.Schema] = {}
"""A landing file's schema per candle dtypes (see ``_file_table``)."""


def _file_table(candles: pd.DataFrame, **constants: str) -> pa.Table:
    """A landing file's table: ``constants`` as string columns, then the candles.

    The same schema and pandas metadata as ``pa.Table.from_pandas`` of the candles with the
    constants assigned, but each constant column is built in Arrow once instead of converting
    one Python string per row (that conversion cost seven times the rest of the table).
    """
    if len(candles) <= 1:
        frame = candles.assign(**constants)[list(CANDLE_FILE_COLUMNS)]
        return pa.Table.from_pandas(frame, preserve_index=False)
    signature = tuple((name, str(dtype)) for name, dtype in candles.dtypes.items())
    schema = _FILE_SCHEMAS.get(signature)
    if schema is None:  # the schema and pandas metadata depend on the dtypes, not the values
        sample = candles.iloc[:1].assign(**constants)[list(CANDLE_FILE_COLUMNS)]
        schema = _FILE_SCHEMAS[signature] = pa.Schema.from_pandas(sample, preserve_index=False)
    body = pa.Table.from_pandas(candles, preserve_index=False)
    columns = [
        pa.repeat(pa.scalar(constants[f.name], f.type), len(candles))
        if f.name in constants
        else body[f.name].combine_chunks()
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


KEY_COLUMNS = ["partition_key", "expired_instrument_key", "interval"]
"""The landing files' only dictionary-encoded columns: one value each per contract. Prices, times
and counts are nearly all distinct, and trying a dictionary on them first costs a sixth of a
contract's write (1.5 % larger files without it)."""


def _write_atomically(table: pa.Table, path: Path, **options: object) -> None:
    options.setdefault("use_dictionary", KEY_COLUMNS)
    with atomic_write(path) as handle:
        pq.write_table(table, handle, compression="zstd", **options)


def _write_compacted(table: pa.Table, path: Path) -> None:
    _write_atomically(
        table,
        path,
        compression_level=COMPACTION_LEVEL,
        row_group_size=1 << 20,
        use_dictionary=KEY_COLUMNS,
        column_encoding=COMPACTED_ENCODINGS,
    )


def _serialized(method: _F) -> _F:
    """Run ``method`` holding the landing's lock (see ``CandleLanding.__init__``)."""

    @functools.wraps(method)
    def locked(self: CandleLanding, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return locked  # type: ignore[return-value]


class CandleLanding:
    """Landed candles under ``root/<interval>/<partition_key>/``."""

    def __init__(self, root: Path | str, interval: str) -> None:
        self.root = Path(root)
        self.interval = interval
        self._compacted: dict[Path, tuple[int, dict[str, dict]]] = {}
        self._pruned: dict[Path, tuple[int, dict]] = {}
        self._settled: set[str] = set()
        # Saves of different contracts rewrite the one compacted file of their partition, and
        # collection saves from worker threads: every file operation holds this lock.
        self._lock = threading.RLock()

    def partition_dir(self, partition_key: str) -> Path:
        return self.root / self.interval / partition_key

    def _paths(self, partition_key: str, expired_instrument_key: str) -> tuple[Path, Path]:
        base = self.partition_dir(partition_key) / _file_stem(expired_instrument_key)
        return base.with_suffix(".parquet"), base.with_suffix(".failed.json")

    @_serialized
    def save(
        self,
        partition_key: str,
        expired_instrument_key: str,
        candles: pd.DataFrame,
        days: Mapping[date, DayRecord],
        duplicates_collapsed: int = 0,
    ) -> LandedContract:
        """Land a contract's candles and day records atomically (zero candles is valid).

        Identical duplicate candles are dropped here, so no file ever holds one. A pruned
        partition refuses (:class:`PartitionPruned`): its day records are final and kept.
        """
        if self.is_pruned(partition_key):
            raise PartitionPruned(partition_key, f"land candles of {expired_instrument_key}")
        path, legacy_failure = self._paths(partition_key, expired_instrument_key)
        path.parent.mkdir(parents=True, exist_ok=True)
        candles, dropped = drop_identical_duplicates(candles[list(CANDLE_COLUMNS)])
        if not candles["timestamp"].is_monotonic_increasing:
            candles = candles.sort_values("timestamp", kind="stable")
        candles = candles.reset_index(drop=True)
        outcome = _outcome_json(
            expired_instrument_key, candles, days, duplicates_collapsed + dropped
        )
        table = _file_table(
            candles,
            partition_key=partition_key,
            expired_instrument_key=expired_instrument_key,
            interval=self.interval,
        )
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), _OUTCOME_KEY: json.dumps(outcome).encode()}
        )
        _write_atomically(table, path)
        legacy_failure.unlink(missing_ok=True)
        # Written first, so a crash leaves the contract in both files and this one wins.
        self._drop_from_compacted(partition_key, expired_instrument_key)
        return _landed_from_outcome(path, outcome)

    @_serialized
    def load(
        self, partition_key: str, expired_instrument_key: str, window_days: Iterable[date]
    ) -> LandedContract | None:
        """The contract's landed file and day records, or None when nothing landed.

        ``window_days`` are the partition's trading days: a version-1 file answered all of them
        (at an unverified span), a version-1 failure note failed all of them. A contract of a
        pruned partition comes back with ``pruned`` set: its day records, no candles.
        """
        self._settle(partition_key)
        record = self._pruned_json(partition_key)
        if record is not None:
            outcome = record["contracts"].get(expired_instrument_key)
            if outcome is None:
                return None
            return _landed_from_outcome(self.pruned_path(partition_key), outcome, pruned=True)
        path, legacy_failure = self._paths(partition_key, expired_instrument_key)
        if path.exists():
            meta = pq.read_schema(path).metadata or {}
            outcome = json.loads(meta[_OUTCOME_KEY])
            if outcome.get("version", 1) >= 2:
                return _landed_from_outcome(path, outcome)
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
        compacted = self.compacted_path(partition_key)
        outcome = self._compacted_outcomes(compacted).get(expired_instrument_key)
        if outcome is not None:
            return _landed_from_outcome(compacted, outcome)
        return None

    @_serialized
    def candles(self, landed: LandedContract) -> pd.DataFrame:
        """The candles of a landed contract (ascending, IST), as the client parsed them.

        :class:`PartitionPruned` for a contract of a pruned partition: it has no candles here.
        """
        if landed.pruned:
            partition_key = landed.path.parent.name
            raise PartitionPruned(
                partition_key, f"read the candles of {landed.expired_instrument_key}"
            )
        if not landed.path.exists():
            return empty_candles()
        rows = None
        if landed.path.name == COMPACTED_NAME:
            rows = [("expired_instrument_key", "==", landed.expired_instrument_key)]
        frame = pd.read_parquet(landed.path, columns=list(CANDLE_COLUMNS), filters=rows)
        frame["timestamp"] = frame["timestamp"].dt.tz_convert(IST)
        return frame.reset_index(drop=True)

    @_serialized
    def candles_per_day(self, landed: LandedContract) -> dict[date, int]:
        """Stored candles per trading date (IST) of the landed contract."""
        if landed.day_candles is not None:
            return dict(landed.day_candles)
        if not landed.candle_count or not landed.path.exists():
            return {}
        return ist_day_counts(self.candles(landed)["timestamp"])

    @_serialized
    def files(self, partition_key: str) -> list[Path]:
        """Every landed candle file of the partition (each contract's candles in exactly one;
        none once pruned)."""
        self._settle(partition_key)
        if self.is_pruned(partition_key):
            return []
        directory = self.partition_dir(partition_key)
        return sorted(directory.glob("*.parquet")) if directory.exists() else []

    def partitions(self) -> list[str]:
        """Every partition key with a folder in the landing zone, sorted."""
        base = self.root / self.interval
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.exists() else []

    @_serialized
    def contract_keys(self, partition_key: str) -> list[str]:
        """Every contract with candles or day records landed for the partition, sorted."""
        self._settle(partition_key)
        record = self._pruned_json(partition_key)
        if record is not None:
            return sorted(record["contracts"])
        keys = set(self._compacted_outcomes(self.compacted_path(partition_key)))
        directory = self.partition_dir(partition_key)
        if directory.exists():
            for path in directory.glob("*.parquet"):
                if path.name != COMPACTED_NAME:
                    keys.add(path.stem.replace("__", "|"))
            for path in directory.glob("*.failed.json"):
                keys.add(path.name.removesuffix(".failed.json").replace("__", "|"))
        return sorted(keys)

    # -- Compaction ------------------------------------------------------------------------------

    def compacted_path(self, partition_key: str) -> Path:
        return self.partition_dir(partition_key) / COMPACTED_NAME

    def is_compacted(self, partition_key: str) -> bool:
        return self.compacted_path(partition_key).exists()

    def _compacted_outcomes(self, path: Path) -> dict[str, dict]:
        """The compacted file's per-contract records, cached while the file is unchanged."""
        try:
            stamp = path.stat().st_mtime_ns
        except FileNotFoundError:
            self._compacted.pop(path, None)
            return {}
        cached = self._compacted.get(path)
        if cached is None or cached[0] != stamp:
            meta = pq.read_schema(path).metadata or {}
            cached = (stamp, json.loads(meta[_CONTRACTS_KEY]))
            self._compacted[path] = cached
        return cached[1]

    @_serialized
    def compact(self, partition_key: str, keys: Iterable[str]) -> Path:
        """Merge the contracts' files into one zstd file for the partition; remove their files.

        The caller decides when (every day of every contract final). The compacted file is
        written whole before any per-contract file is removed, so a crash loses nothing.
        """
        self._settle(partition_key)
        target = self.compacted_path(partition_key)
        outcomes = dict(self._compacted_outcomes(target))
        tables: dict[str, pa.Table] = {}
        in_order = not target.exists()  # each file is one contract, sorted by time when saved
        moved: list[Path] = []
        for key in keys:
            path, _ = self._paths(partition_key, key)
            if not path.exists():
                continue
            table = pq.read_table(path)
            outcome = json.loads((table.schema.metadata or {})[_OUTCOME_KEY])
            if outcome.get("version", 1) < 2 or "day_candles" not in outcome:
                in_order = False  # written before saves sorted their candles
                landed = _landed_from_outcome(path, {**outcome, "day_candles": None})
                counts = self.candles_per_day(landed)
                outcome["day_candles"] = {d.isoformat(): int(n) for d, n in sorted(counts.items())}
            outcomes[key] = outcome
            tables[key] = table.replace_schema_metadata(None)
            moved.append(path)
        if not moved:
            return target
        # Rows by contract, then time: contracts' files in key order already are (no reordering
        # of every column); otherwise (merging into an earlier compacted file) sort.
        merged = pa.concat_tables(
            [tables[key] for key in sorted(tables)]
            if in_order
            else [*([pq.read_table(target)] if target.exists() else []), *tables.values()],
            promote_options="default",
        )
        if not in_order:
            merged = merged.sort_by(
                [("expired_instrument_key", "ascending"), ("timestamp", "ascending")]
            )
        merged = merged.replace_schema_metadata(
            {_CONTRACTS_KEY: json.dumps(outcomes, sort_keys=True).encode()}
        )
        _write_compacted(merged, target)
        for path in moved:
            path.unlink()
        return target

    def _drop_from_compacted(self, partition_key: str, key: str) -> None:
        """Remove one contract from the compacted file (it now has a file of its own)."""
        target = self.compacted_path(partition_key)
        outcomes = dict(self._compacted_outcomes(target))
        if key not in outcomes:
            return
        del outcomes[key]
        if not outcomes:
            target.unlink()
            return
        table = pq.read_table(target, filters=[("expired_instrument_key", "!=", key)])
        table = table.replace_schema_metadata(
            {_CONTRACTS_KEY: json.dumps(outcomes, sort_keys=True).encode()}
        )
        _write_compacted(table, target)

    def _settle(self, partition_key: str) -> None:
        """Finish what a crash interrupted: no contract may be in two files.

        A contract both in the compacted file and in its own file is either left over from an
        interrupted compaction (own file older: removed) or was saved again since (own file
        newer: it leaves the compacted file). A candle file beside a prune record is left over
        from an interrupted prune (the record is written first): removed.
        """
        if partition_key in self._settled:
            return
        self._settled.add(partition_key)
        if self.is_pruned(partition_key):
            # Left by a prune interrupted after its record was written: verified, then removed.
            for path in self._candle_files(partition_key):
                path.unlink(missing_ok=True)
            return
        target = self.compacted_path(partition_key)
        outcomes = self._compacted_outcomes(target)
        if not outcomes:
            return
        compacted_at = target.stat().st_mtime_ns
        for key in list(outcomes):
            path, _ = self._paths(partition_key, key)
            if not path.exists():
                continue
            if path.stat().st_mtime_ns <= compacted_at:
                path.unlink()
            else:
                self._drop_from_compacted(partition_key, key)

    # -- Pruning ---------------------------------------------------------------------------------

    def pruned_path(self, partition_key: str) -> Path:
        return self.partition_dir(partition_key) / PRUNED_NAME

    def is_pruned(self, partition_key: str) -> bool:
        """True when the partition's candle files were pruned (its record is kept)."""
        return self.pruned_path(partition_key).exists()

    def pruned_partitions(self) -> list[str]:
        """Every pruned partition key, sorted."""
        return [key for key in self.partitions() if self.is_pruned(key)]

    def _pruned_json(self, partition_key: str) -> dict | None:
        """The partition's prune record as stored, cached while the file is unchanged."""
        path = self.pruned_path(partition_key)
        try:
            stamp = path.stat().st_mtime_ns
        except FileNotFoundError:
            self._pruned.pop(path, None)
            return None
        cached = self._pruned.get(path)
        if cached is None or cached[0] != stamp:
            cached = (stamp, json.loads(gzip.decompress(path.read_bytes())))
            self._pruned[path] = cached
        return cached[1]

    @_serialized
    def pruned_record(self, partition_key: str) -> PrunedRecord | None:
        """What the partition's prune record says, or None when it was not pruned."""
        raw = self._pruned_json(partition_key)
        if raw is None:
            return None
        return PrunedRecord(
            raw["partition_key"],
            datetime.fromisoformat(raw["pruned_at"]),
            int(raw["candle_rows"]),
            str(raw["checksum"]),
            int(raw["landing_bytes"]),
            len(raw["contracts"]),
        )

    def _candle_files(self, partition_key: str) -> list[Path]:
        directory = self.partition_dir(partition_key)
        if not directory.exists():
            return []
        return sorted([*directory.glob("*.parquet"), *directory.glob("*.failed.json")])

    @_serialized
    def fingerprint(self, partition_key: str) -> dict[str, tuple[int, int]]:
        """``{file name: (bytes, mtime_ns)}`` of the partition's candle files: what a prune
        verified, so that a file changed since is noticed before anything is removed."""
        self._settle(partition_key)
        return {
            path.name: (path.stat().st_size, path.stat().st_mtime_ns)
            for path in self._candle_files(partition_key)
        }

    @_serialized
    def prune(
        self,
        partition_key: str,
        verified: Mapping[str, tuple[int, int]],
        *,
        candle_rows: int,
        checksum: str,
        at: datetime,
    ) -> PrunedRecord:
        """Remove the partition's candle files, keeping every contract's day records.

        The caller has verified that the database holds exactly these files' candles and that
        every day is final (``ops.prune``); ``verified`` is :meth:`fingerprint` as it was then.
        Refuses (``ValueError``, nothing touched) when the files differ from it. The record is
        written whole before the first file is removed.
        """
        self._settle(partition_key)
        if self.is_pruned(partition_key):
            raise ValueError(f"{partition_key}: already pruned")
        now = self.fingerprint(partition_key)
        if not verified or now != dict(verified):
            raise ValueError(
                f"{partition_key}: its landing files changed since they were verified "
                "(a run wrote to it?); nothing was pruned: verify again"
            )
        outcomes = {
            key: self._outcome_for_record(partition_key, key)
            for key in self.contract_keys(partition_key)
        }
        record = {
            "version": PRUNED_VERSION,
            "partition_key": partition_key,
            "interval": self.interval,
            "pruned_at": at.isoformat(),
            "candle_rows": candle_rows,
            "checksum": checksum,
            "landing_bytes": sum(size for size, _ in now.values()),
            "contracts": outcomes,
        }
        with atomic_write(self.pruned_path(partition_key)) as handle:
            handle.write(gzip.compress(json.dumps(record, sort_keys=True).encode(), mtime=0))
        for path in self._candle_files(partition_key):
            path.unlink()
        self._compacted.pop(self.compacted_path(partition_key), None)
        result = self.pruned_record(partition_key)
        assert result is not None
        return result

    def _outcome_for_record(self, partition_key: str, key: str) -> dict:
        """One contract's outcome (as a compacted file stores it), candle counts per day included."""
        landed = self.load(partition_key, key, ())
        if landed is None or landed.version < 2:
            raise ValueError(f"{partition_key}: {key} has no day records to keep; nothing pruned")
        counts = self.candles_per_day(landed)
        return {
            "version": LANDING_VERSION,
            "expired_instrument_key": key,
            "candle_count": landed.candle_count,
            "duplicates_collapsed": landed.duplicates_collapsed,
            "days": {d.isoformat(): r.as_json() for d, r in sorted(landed.days.items())},
            "day_candles": {d.isoformat(): int(n) for d, n in sorted(counts.items())},
        }
