"""``expirytrack rebuild``: recreate the candle tables from the landing zone, with no API request.

The landing zone is the raw checkpoint of every candle fetched and of how each contract-day was
answered, so ``candles`` and ``candle_fetch_status`` can always be rebuilt from it.

- A healthy database: the chosen partitions (default: every landed one) are republished from the
  landing zone, each in one transaction.
- A damaged database (it cannot be opened or a block fails its checksum): it is moved aside to
  ``<name>.damaged-<UTC time>``; a new one is made with every other table that can still be read
  in full copied over (expiries, contracts, coverage_report, the source mark), then every landed
  partition is republished. Tables that could not be read are named: re-running their partitions
  (``expirytrack backfill``) restores them without a candle request.

A partition whose landing was pruned (``ops.prune``) is skipped and named: its candles live only
in the database, so the landing cannot restore them (after damage, the last backup can).
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
from expirytrack_dagster.storage.io_manager import StagedCandles, publish_partition
from expirytrack_dagster.storage.landing import CandleLanding
from expirytrack_dagster.storage.schema import create_tables, table_names
from expirytrack_dagster.storage.stores import StoreError, check_database

CANDLE_TABLES = ("candles", "candle_fetch_status")


@dataclass
class RebuildReport:
    """What ``rebuild`` did: candle rows per partition, tables copied or lost, the damaged copy."""

    partitions: dict[str, int] = field(default_factory=dict)
    damaged_copy: Path | None = None
    damage: str | None = None
    copied_tables: list[str] = field(default_factory=list)
    lost_tables: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)  # skipped: candles only in the database


def _contract_keys(database: Path, landing: CandleLanding, partition_key: str) -> list[str]:
    """The partition's contracts as stored (so never-landed ones keep their status), else landed."""
    if not database.exists():
        return landing.contract_keys(partition_key)
    with connect(database, read_only=True) as connection:
        if "contracts" in table_names(connection):
            rows = connection.execute(
                "SELECT expired_instrument_key FROM main.contracts WHERE partition_key = ? "
                "ORDER BY expired_instrument_key",
                [partition_key],
            ).fetchall()
            if rows:
                return [row[0] for row in rows]
    return landing.contract_keys(partition_key)


def _salvage(damaged: Path, database: Path, report: RebuildReport) -> None:
    """A new database with every table of ``damaged`` that reads in full, except candle tables."""
    with connect(database) as connection:
        create_tables(connection)
        try:
            connection.execute(f"ATTACH '{damaged}' AS damaged (READ_ONLY)")
        except duckdb.Error:
            report.lost_tables = ["expiries", "contracts", "coverage_report"]
            return
        names = [
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'damaged' "
                "AND schema_name = 'main' ORDER BY table_name"
            ).fetchall()
        ]
        for name in names:
            if name in CANDLE_TABLES:
                continue
            try:
                connection.execute("BEGIN TRANSACTION")
                if name in table_names(connection):  # made by create_tables: copy as it was
                    connection.execute(f'DELETE FROM main."{name}"')
                    connection.execute(
                        f'INSERT INTO main."{name}" BY NAME SELECT * FROM damaged.main."{name}"'
                    )
                else:
                    connection.execute(
                        f'CREATE TABLE main."{name}" AS SELECT * FROM damaged.main."{name}"'
                    )
                connection.execute("COMMIT")
                report.copied_tables.append(name)
            except duckdb.Error:
                connection.execute("ROLLBACK")
                report.lost_tables.append(name)
        connection.execute("DETACH damaged")


def rebuild(
    collection: CollectionSettings, partitions: Sequence[str] = (), now: datetime | None = None
) -> RebuildReport:
    """Rebuild the candle tables of ``partitions`` (default: all landed) from the landing zone.

    Makes no API request. A damaged database is moved aside and replaced (see the module doc).
    Pruned partitions are left as they are and listed in ``pruned``.
    """
    database = Path(collection.database)
    landing = CandleLanding(collection.landing_dir, collection.interval)
    report = RebuildReport()
    try:
        check_database(database)
    except StoreError as exc:
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        report.damaged_copy = database.with_name(f"{database.name}.damaged-{stamp}")
        report.damage = str(exc)
        database.rename(report.damaged_copy)
        database.with_name(database.name + ".wal").unlink(missing_ok=True)
        _salvage(report.damaged_copy, database, report)
        partitions = ()  # every candle row went with the damaged file
    keys = list(partitions) or landing.partitions()
    unknown = [k for k in keys if k not in landing.partitions()]
    if unknown:
        raise StoreError(
            f"nothing landed for {', '.join(unknown)} under {landing.root / landing.interval}: "
            "rebuild only restores partitions whose candles landed"
        )
    for key in keys:
        if landing.is_pruned(key):
            report.pruned.append(key)
            continue
        expiry = parse_partition_key(key).expiry
        window = (collection.lookback_start(expiry), expiry)
        status, files = fetch_status(landing, key, _contract_keys(database, landing, key), *window)
        staged = StagedCandles(key, tuple(dict.fromkeys(files)), status, {})
        report.partitions[key] = publish_partition(database, staged)
    with connect(database) as connection:
        connection.execute("CHECKPOINT")
    return report
