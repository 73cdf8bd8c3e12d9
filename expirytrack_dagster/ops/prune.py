"""Pruning the landing zone: verify a partition complete and published, then drop its candle files.

The landing zone doubles the disk a partition takes. For a partition whose collection is finished
and whose candles are safely in the database, its candle files can go (``landing_retention:
prune_verified`` in the settings, or ``expirytrack prune-landing``). Collected data costs API
budget that cannot be spent twice, so :func:`verify_partition` allows a prune only when all of
this holds, read fresh from the files and the database, not from what a run last reported:

1. every (contract, trading day) of every stored contract has a final outcome in the landing
   zone (``complete`` or ``no_trades``: answered at a verified request span);
2. the database publishes exactly that: its ``candle_fetch_status`` rows equal the landing's,
   and its ``candles`` rows equal the landing files' rows in number and in checksum (a sum of a
   hash of every row, so any row added, lost or altered shows);
3. every blocking (ERROR) quality rule passes on the stored partition, run now.

:func:`prune_partition` then hands the verified file list to ``CandleLanding.prune``, which
keeps every contract's day records (so a re-run asks for nothing and publishes nothing) and
refuses when a file changed since it was verified. Afterwards ``expirytrack rebuild`` skips the
partition: its candles live only in the database, and ``expirytrack backup`` is their copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from expirytrack_dagster.collection import fetch_status
from expirytrack_dagster.partitions import parse_partition_key
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster.storage.database import connect
from expirytrack_dagster.storage.io_manager import StagedCandles, is_published
from expirytrack_dagster.storage.landing import FINAL_STATUSES, CandleLanding, PrunedRecord
from expirytrack_dagster.storage.schema import table_names

ROW_HASH = (
    'hash(expired_instrument_key, "interval", CAST("timestamp" AS TIMESTAMPTZ), '
    "CAST(open AS DOUBLE), CAST(high AS DOUBLE), CAST(low AS DOUBLE), CAST(close AS DOUBLE), "
    "CAST(volume AS BIGINT), CAST(open_interest AS BIGINT))"
)
"""One candle row's hash, computed alike on the landing files and the ``candles`` table."""

RERUN_FIX = "run the partition again (it asks only for days that are not final) first"


@dataclass(frozen=True)
class PruneCheck:
    """Whether a partition may be pruned: ``reason`` is None when it may, else why not."""

    partition_key: str
    reason: str | None
    candle_rows: int = 0
    checksum: str = ""
    landing_bytes: int = 0
    files: dict[str, tuple[int, int]] = field(default_factory=dict)  # verified fingerprint

    @property
    def prunable(self) -> bool:
        return self.reason is None


def _refused(key: str, reason: str) -> PruneCheck:
    return PruneCheck(key, reason)


def candle_checksum(
    connection: duckdb.DuckDBPyConnection, relation: str, params: Sequence[object] = ()
) -> tuple[int, str]:
    """``(rows, checksum)`` of the candle rows ``relation`` (a table filter or a Parquet scan)
    yields: order-independent, changed by any added, removed or altered row."""
    rows, total = connection.execute(
        f"SELECT count(*), coalesce(sum({ROW_HASH}::HUGEINT), 0) FROM {relation}", list(params)
    ).fetchall()[0]
    return int(rows), str(total)


def _stored_contracts(connection: duckdb.DuckDBPyConnection, partition_key: str) -> list[str]:
    return [
        row[0]
        for row in connection.execute(
            "SELECT expired_instrument_key FROM main.contracts WHERE partition_key = ? "
            "ORDER BY expired_instrument_key",
            [partition_key],
        ).fetchall()
    ]


def _blocking_failures(
    connection: duckdb.DuckDBPyConnection, partition_key: str, collection: CollectionSettings
) -> list[str]:
    """The blocking (ERROR) rules that fail on the stored partition now, by name."""
    from dagster import Failure

    from expirytrack_dagster.checks.partition_data import (
        load_candles,
        load_contracts,
        load_fetch_status,
        partition_scope,
    )
    from expirytrack_dagster.quality import RULES, PartitionData

    try:
        scope = partition_scope(connection, partition_key, collection)
    except Failure as exc:
        return [f"(cannot be judged: {exc.description})"]
    data = PartitionData(
        scope=scope,
        contracts=load_contracts(connection, partition_key),
        candles=load_candles(connection, partition_key),
        fetch_status=load_fetch_status(connection, partition_key),
    )
    return [rule.name for rule in RULES if rule.blocking and not rule.run(data).passed]


def verify_partition(collection: CollectionSettings, partition_key: str) -> PruneCheck:
    """Check, touching nothing, whether ``partition_key``'s landing files may be pruned.

    The caller must be the only writer of the partition (the ``candles`` step itself, or no run
    of it in progress): the database is read in one read-only connection.
    """
    landing = CandleLanding(collection.landing_dir, collection.interval)
    key = partition_key
    if landing.is_pruned(key):
        return _refused(key, "already pruned")
    if key not in landing.partitions():
        return _refused(key, "nothing landed for it")
    database = Path(collection.database)
    if not database.exists():
        return _refused(key, f"no database at {database}: its candles are only in the landing")
    expiry = parse_partition_key(key).expiry
    window = (collection.lookback_start(expiry), expiry)
    fingerprint = landing.fingerprint(key)
    with connect(database, read_only=True) as connection:
        if not {"contracts", "candles", "candle_fetch_status"} <= set(table_names(connection)):
            return _refused(key, "the database has no candle tables yet")
        contracts = _stored_contracts(connection, key)
        if not contracts:
            return _refused(key, f"no contracts are stored for it; {RERUN_FIX}")
        status, files = fetch_status(landing, key, contracts, *window)
        open_days = int((~status["status"].isin(FINAL_STATUSES)).sum())
        if open_days:
            return _refused(
                key,
                f"{open_days:,} contract-days are not final (failed, unconfirmed or never "
                f"fetched); {RERUN_FIX}",
            )
        staged = StagedCandles(key, tuple(Path(f) for f in dict.fromkeys(files)), status)
        if not is_published(connection, staged):
            return _refused(
                key,
                "the database does not hold what landed (fetch status or candle count differ); "
                f"{RERUN_FIX}, or `expirytrack rebuild {key}`",
            )
        stored = candle_checksum(connection, "main.candles WHERE partition_key = ?", [key])
        landed = (0, "0")
        if staged.files:
            landed = candle_checksum(
                connection,
                "read_parquet(?) WHERE partition_key = ?",
                [[str(path) for path in staged.files], key],
            )
        if stored != landed:
            return _refused(
                key,
                f"the database's candles differ from the landing's ({stored[0]:,} rows, checksum "
                f"{stored[1]} against {landed[0]:,}, {landed[1]}); `expirytrack rebuild {key}` "
                "republishes them from the landing",
            )
        failing = _blocking_failures(connection, key, collection)
    if failing:
        return _refused(key, f"blocking checks fail: {', '.join(failing)}")
    return PruneCheck(
        key,
        None,
        candle_rows=stored[0],
        checksum=stored[1],
        landing_bytes=sum(size for size, _ in fingerprint.values()),
        files=fingerprint,
    )


def prune_partition(
    collection: CollectionSettings,
    partition_key: str,
    check: PruneCheck | None = None,
    at: datetime | None = None,
) -> PrunedRecord:
    """Prune ``partition_key``'s landing files (verifying it first unless ``check`` is given).

    ``ValueError`` naming the reason when it may not be pruned, or when its files changed since
    ``check`` verified them; nothing is touched then.
    """
    check = check or verify_partition(collection, partition_key)
    if not check.prunable:
        raise ValueError(f"{partition_key}: not pruned: {check.reason}")
    landing = CandleLanding(collection.landing_dir, collection.interval)
    return landing.prune(
        partition_key,
        check.files,
        candle_rows=check.candle_rows,
        checksum=check.checksum,
        at=at or datetime.now(UTC),
    )


def plan_prune(collection: CollectionSettings, partitions: Sequence[str] = ()) -> list[PruneCheck]:
    """A :class:`PruneCheck` for each of ``partitions`` (default: every landed one not pruned)."""
    landing = CandleLanding(collection.landing_dir, collection.interval)
    keys = list(partitions) or [k for k in landing.partitions() if not landing.is_pruned(k)]
    return [verify_partition(collection, key) for key in keys]


def apply_retention(collection: CollectionSettings, partition_key: str) -> str | None:
    """After a publish: prune the partition when ``landing_retention`` is ``prune_verified``.

    For the ``candles`` step, right after it published (it holds the database writer pool, so
    no other run writes meanwhile). Returns what happened, one line for the step's metadata
    (None under ``keep``); a partition that is not verified is kept, never an error.
    """
    if collection.landing_retention != "prune_verified":
        return None
    check = verify_partition(collection, partition_key)
    if not check.prunable:
        return f"kept: {check.reason}"
    try:
        record = prune_partition(collection, partition_key, check)
    except ValueError as exc:
        return f"kept: {exc}"
    return (
        f"pruned: {record.landing_bytes / 1e6:,.1f} MB of landing files removed, "
        f"{record.candle_rows:,} candles now only in the database"
    )
