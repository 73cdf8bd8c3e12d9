"""`expirytrack prune-landing` as a user runs it (``cli.main`` in-process) on real stores, asking first."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from expirytrack_dagster.storage.landing import CandleLanding
from expirytrack_dagster_tests.cli_project import RELIANCE, REPO, call_main
from expirytrack_dagster_tests.ops.conftest import KEYS, Project
from expirytrack_dagster_tests.pipeline import stock_pipeline, watch_underlying

EXPIRY = date(2025, 8, 28)


def test_partitions_not_verified_are_kept_with_the_reason(project: Project) -> None:
    before = sorted(p.relative_to(project.landing) for p in project.landing.rglob("*"))
    done = project.main("prune-landing")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Kept:" and lines[-1] == "Nothing to prune."
    for key in KEYS:
        assert any(line.split()[0] == key and "are not final" in line for line in lines[1:-1])
    asked = project.main("prune-landing", KEYS[0])
    assert asked.returncode == 1 and "Nothing to prune." in asked.stdout
    unknown = project.main("prune-landing", "RELIANCE_2025-10-30")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith(
        "expirytrack prune-landing: error: nothing landed for RELIANCE_2025-10-30"
    )
    assert sorted(p.relative_to(project.landing) for p in project.landing.rglob("*")) == before


def test_prune_landing_asks_then_prunes_and_rebuild_skips_the_partition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch_underlying(tmp_path, monkeypatch)
    with stock_pipeline(tmp_path) as stock:
        key = stock.partition("RELIANCE", EXPIRY)
        assert stock.materialize(key).success
    settings = tmp_path / "cli.yaml"
    settings.write_text(
        f'underlyings:\n  - symbol: RELIANCE\n    instrument_key: "{RELIANCE}"\n'
        "collection:\n  lookback_months: 1\n"
    )
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "data" / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("UPSTOX_", "EXPIRYTRACK_"))},
        "DAGSTER_HOME": str(home),
        "EXPIRYTRACK_CONFIG": str(settings),
        "EXPIRYTRACK_DATABASE": str(stock.database),
        "EXPIRYTRACK_LANDING_DIR": str(tmp_path / "landing"),
        "EXPIRYTRACK_STATE_DIR": str(tmp_path / "state"),
        "EXPIRYTRACK_CREDENTIALS_DIR": str(tmp_path / "credentials"),
        "EXPIRYTRACK_SOURCE": "sandbox",
        "PYTHONPATH": str(REPO),
    }

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return call_main(argv, env, tmp_path)

    landing = CandleLanding(tmp_path / "landing", "1minute")
    refused = cli("prune-landing")
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "expirytrack prune-landing: error: refusing to prune the landing zone without "
        "confirmation (no terminal): pass --yes"
    )
    assert refused.stdout.splitlines()[1].split()[0] == key
    assert not landing.is_pruned(key)

    pruned = cli("prune-landing", "--yes")
    assert pruned.returncode == 0, pruned.stderr
    assert "Pruned 1 partition(s)" in pruned.stdout
    assert landing.is_pruned(key) and landing.files(key) == []

    skipped = cli("rebuild")
    assert skipped.returncode == 0, skipped.stderr
    assert f"Skipped 1 pruned partition(s): {key}." in skipped.stdout
    assert "Rebuilt 0 partition(s), 0 candles" in skipped.stdout

    again = cli("prune-landing")
    assert again.returncode == 0 and again.stdout.strip() == "Nothing to prune."
