"""Deleting one partition on purpose: its rows, its landing files and its Dagster status, together.

:func:`plan_deletion` lists what would go, touching nothing; :func:`delete_partition` removes it:
the rows of every table keyed by ``partition_key`` in one transaction (``api_usage`` stays: it is
the history of budget spent, not data), then the partition's landing files, then its Dagster
runs (with their materialisations and check results: Dagster's SQLite storage cannot wipe one
partition of an asset, so the partition's runs go, which clears its status) and the partition key
itself. A run of the partition in progress blocks it. Deleting again finishes a deletion that was
interrupted.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, DagsterRunStatus, RunsFilter

from expirytrack_dagster.partitions import PARTITIONS_NAME
from expirytrack_dagster.storage.database import connect
from expirytrack_dagster.storage.schema import SCHEMA

KEPT_TABLES = ("api_usage",)
"""Tables keyed by partition that a deletion keeps: the record of budget already spent."""

IN_PROGRESS = (
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
)


class DeletionRefused(RuntimeError):
    """The partition cannot be deleted now (a run of it is in progress)."""


@dataclass(frozen=True)
class DeletionPlan:
    """What deleting ``partition_key`` removes."""

    partition_key: str
    rows: dict[str, int]  # table -> rows of this partition (tables with none included)
    landing_paths: tuple[Path, ...]  # the partition's directories (or files) in the landing zone
    landing_files: int
    landing_bytes: int
    materialized_assets: tuple[str, ...]  # assets with a materialisation of this partition
    runs: tuple[str, ...]  # ids of the partition's runs (their logs and materialisations)
    dagster_partition: bool  # the key is one of the instance's partitions

    @property
    def empty(self) -> bool:
        """True when nothing at all is stored for the partition."""
        return not (
            any(self.rows.values())
            or self.landing_paths
            or self.materialized_assets
            or self.runs
            or self.dagster_partition
        )

    def describe(self) -> list[str]:
        """Lines for the user: what goes, table by table."""
        lines = [f"Deleting {self.partition_key} removes:"]
        for table, count in self.rows.items():
            lines.append(f"  {table:<20} {count:>12,} rows")
        mb = self.landing_bytes / 1e6
        lines.append(f"  {'landing files':<20} {self.landing_files:>12,} ({mb:.1f} MB)")
        for path in self.landing_paths:
            lines.append(f"    {path}")
        assets = ", ".join(self.materialized_assets) or "none"
        key = "yes" if self.dagster_partition else "no"
        lines.append(
            f"  Dagster: {len(self.runs)} runs with their logs and materialisations (of "
            f"{assets}); partition key listed: {key}"
        )
        lines.append(f"  ({', '.join(KEPT_TABLES)} keeps its rows: the record of budget spent)")
        return lines


def _partition_tables(db: object) -> list[str]:
    rows = db.execute(  # type: ignore[attr-defined]
        "SELECT DISTINCT table_name FROM duckdb_columns() WHERE schema_name = ? "
        "AND column_name = 'partition_key' AND database_name = current_database() "
        "ORDER BY table_name",
        [SCHEMA],
    ).fetchall()
    return [name for (name,) in rows if name not in KEPT_TABLES]


def _landing_paths(landing_dir: Path, partition_key: str) -> list[Path]:
    """``<landing>/<interval>/<key>`` for every interval, and any ``<key>.*`` file beside it."""
    if not landing_dir.exists():
        return []
    found = []
    for interval in sorted(p for p in landing_dir.iterdir() if p.is_dir()):
        found += sorted(
            p
            for p in interval.iterdir()
            if p.name == partition_key or p.name.startswith(partition_key + ".")
        )
    return found


def _size(path: Path) -> tuple[int, int]:
    if path.is_file():
        return 1, path.stat().st_size
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def plan_deletion(
    partition_key: str,
    *,
    database: Path,
    landing_dir: Path,
    instance: DagsterInstance,
    asset_keys: Sequence[AssetKey],
) -> DeletionPlan:
    """What deleting ``partition_key`` would remove; nothing is touched."""
    rows: dict[str, int] = {}
    if database.exists():
        with connect(database, read_only=True) as db:
            for table in _partition_tables(db):
                rows[table] = db.execute(
                    f'SELECT count(*) FROM {SCHEMA}."{table}" WHERE partition_key = ?',
                    [partition_key],
                ).fetchall()[0][0]
    paths = _landing_paths(landing_dir, partition_key)
    sizes = [_size(p) for p in paths]
    materialized = tuple(
        key.to_user_string()
        for key in asset_keys
        if instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=[partition_key]), limit=1
        ).records
    )
    runs = instance.get_runs(RunsFilter(tags={"dagster/partition": partition_key}))
    return DeletionPlan(
        partition_key,
        rows,
        tuple(paths),
        sum(n for n, _ in sizes),
        sum(b for _, b in sizes),
        materialized,
        tuple(run.run_id for run in runs),
        instance.has_dynamic_partition(PARTITIONS_NAME, partition_key),
    )


def runs_in_progress(instance: DagsterInstance, partition_key: str) -> list[str]:
    """Ids of the partition's runs that are queued or running."""
    runs = instance.get_runs(
        RunsFilter(statuses=list(IN_PROGRESS), tags={"dagster/partition": partition_key})
    )
    return [run.run_id for run in runs]


def delete_partition(plan: DeletionPlan, *, database: Path, instance: DagsterInstance) -> None:
    """Remove what ``plan`` lists: rows (one transaction), landing files, Dagster status.

    ``DeletionRefused`` when a run of the partition is queued or running: it would write again.
    """
    busy = runs_in_progress(instance, plan.partition_key)
    if busy:
        raise DeletionRefused(
            f"run {', '.join(r[:8] for r in busy)} of {plan.partition_key} is queued or running: "
            "wait for it to end (or cancel it in the Dagster UI), then delete again"
        )
    if any(plan.rows.values()):
        with connect(database) as db:
            db.execute("BEGIN TRANSACTION")
            for table in plan.rows:
                db.execute(
                    f'DELETE FROM {SCHEMA}."{table}" WHERE partition_key = ?',
                    [plan.partition_key],
                )
            db.execute("COMMIT")
            db.execute("CHECKPOINT")  # give the freed space back to the file now
    for path in plan.landing_paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    for run_id in plan.runs:
        instance.delete_run(run_id)
    if plan.dagster_partition:
        instance.delete_dynamic_partition(PARTITIONS_NAME, plan.partition_key)
