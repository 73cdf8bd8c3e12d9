"""`expirytrack delete`: what goes is shown first, then rows, landing files and Dagster status go together."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterRun, DagsterRunStatus

from expirytrack_dagster.cli import main
from expirytrack_dagster.ops.delete import DeletionRefused, delete_partition, plan_deletion
from expirytrack_dagster.partitions import PARTITIONS_NAME
from expirytrack_dagster_tests.cli_project import answer_on_a_terminal
from expirytrack_dagster_tests.ops.conftest import ASSETS, KEYS, Project

GONE, KEPT = KEYS


def rows_by_table(database: Path, key: str) -> dict[str, int]:
    with duckdb.connect(str(database), read_only=True) as db:
        return {
            table: db.execute(
                f"SELECT count(*) FROM {table} WHERE partition_key = ?", [key]
            ).fetchone()[0]
            for table in ("expiries", "contracts", "candles", "candle_fetch_status")
        }


def partition_rows(database: Path, key: str) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as db:
        return db.execute(
            "SELECT * FROM candles WHERE partition_key = ? ORDER BY ALL", [key]
        ).fetchall()


def materialized(project: Project, key: str) -> list[str]:
    with project.instance() as instance:
        return [
            asset
            for asset in ASSETS
            if instance.fetch_materializations(
                AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[key]), limit=1
            ).records
        ]


def test_delete_shows_what_goes_then_removes_it_everywhere(project: Project) -> None:
    before = rows_by_table(project.database, GONE)
    kept_candles = partition_rows(project.database, KEPT)
    assert all(before.values()) and materialized(project, GONE) == list(ASSETS)

    done = project.main("delete", GONE, "--yes")

    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"Deleting {GONE} removes:" in out
    for table, count in before.items():
        assert f"{table}" in out and f"{count:,} rows" in out
    assert "landing files" in out and "2 (" in out  # two contracts landed
    assert "1 runs with their logs and materialisations (of expiries, contracts, candles)" in out
    assert rows_by_table(project.database, GONE) == dict.fromkeys(before, 0)
    assert not (project.landing / "1minute" / GONE).exists()
    assert materialized(project, GONE) == []
    with project.instance() as instance:
        assert instance.get_dynamic_partitions(PARTITIONS_NAME) == [KEPT]
        assert instance.get_materialized_partitions(AssetKey("candles")) == {KEPT}
        tags = [r.tags.get("dagster/partition") for r in instance.get_runs()]
        assert tags == [KEPT]
    # The other partition is untouched everywhere.
    assert partition_rows(project.database, KEPT) == kept_candles
    assert len(list((project.landing / "1minute" / KEPT).glob("*.parquet"))) == 2
    assert materialized(project, KEPT) == list(ASSETS)


def test_without_a_terminal_it_needs_yes(project: Project) -> None:
    before = rows_by_table(project.database, GONE)
    done = project.main("delete", GONE)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "pass --yes" in line
    assert f"Deleting {GONE} removes:" in done.stdout  # shown, not done
    assert rows_by_table(project.database, GONE) == before
    assert (project.landing / "1minute" / GONE).exists()


def test_on_a_terminal_it_asks_and_no_keeps_everything(project: Project) -> None:
    before = rows_by_table(project.database, GONE)
    code, printed = answer_on_a_terminal(project.main, "n", "delete", GONE)
    assert code == 1 and f"Delete {GONE} for good? [y/N]" in printed
    assert "Nothing deleted." in printed
    assert rows_by_table(project.database, GONE) == before
    assert materialized(project, GONE) == list(ASSETS)

    code, printed = answer_on_a_terminal(project.main, "y", "delete", GONE)
    assert code == 0, printed
    assert rows_by_table(project.database, GONE) == dict.fromkeys(before, 0)


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("reliance-2025", "is not SYMBOL_YYYY-MM-DD"),
        ("RELIANCE_2025-02-30", "impossible date"),
    ],
)
def test_a_malformed_key_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], key: str, says: str
) -> None:
    assert main(["delete", key, "--yes"]) == 2
    printed = capsys.readouterr()
    (line,) = printed.err.strip().splitlines()
    assert line.startswith("expirytrack delete: error:") and says in line


def test_a_key_with_nothing_stored_is_refused(project: Project) -> None:
    done = project.main("delete", "RELIANCE_2024-01-25", "--yes")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "nothing is stored for RELIANCE_2024-01-25" in line


def test_a_partition_being_collected_is_not_deleted(project: Project) -> None:
    keys = [AssetKey(a) for a in ASSETS]
    with project.instance() as instance:
        instance.add_run(
            DagsterRun(
                job_name="collect_expiry",
                run_id="0123456789abcdef",
                status=DagsterRunStatus.STARTED,
                tags={"dagster/partition": GONE},
            )
        )
        plan = plan_deletion(
            GONE,
            database=project.database,
            landing_dir=project.landing,
            instance=instance,
            asset_keys=keys,
        )
        with pytest.raises(DeletionRefused, match="01234567 of RELIANCE_2025-08-28 is queued"):
            delete_partition(plan, database=project.database, instance=instance)
    assert all(rows_by_table(project.database, GONE).values())
    assert (project.landing / "1minute" / GONE).exists()
