"""The README's commands and code run: `expirytrack demo` as ``make demo`` runs it, then the
README's Python block against what it built.

The demo runs once for the module, as ``make demo`` runs it (default paths, relative to a fresh
project folder, no token), on one small underlying; its summary is checked against the database
and the Dagster instance it wrote, and the block is executed from that folder as a user would
paste it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
KEY = re.compile(r"\b[A-Z][A-Z0-9&-]*_\d{4}-\d\d-\d\d\b")


def blocks(language: str) -> list[str]:
    """The README's fenced code blocks of ``language``, dedented."""
    found = re.findall(rf"^( *)```{language}\n(.*?)^\1```", README.read_text(), re.M | re.S)
    return [re.sub(rf"^{indent}", "", body, flags=re.M) for indent, body in found]


def test_the_first_two_commands_are_make_demo_and_make_test() -> None:
    first = blocks("bash")[0].splitlines()
    assert [line.split("#")[0].strip() for line in first[:2]] == ["make demo", "make test"]
    targets = re.findall(r"^([a-z]+):", (REPO / "Makefile").read_text(), re.M)
    assert {"demo", "test"} <= set(targets)


def test_no_runnable_example_hard_codes_a_partition_key() -> None:
    """A key that exists today returns nothing on another day: examples query or list them."""
    for language in ("python", "bash", "sql"):
        for body in blocks(language):
            assert not KEY.search(body), f"a hard-coded partition key in a {language} block"


@dataclass
class Demo:
    folder: Path
    key: str
    """The one partition the demo collected."""
    out: str
    """What the demo printed."""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """A fresh project folder after ``expirytrack demo`` (sandbox) on one RELIANCE partition."""
    folder = tmp_path_factory.mktemp("demo")
    (folder / "data" / "dagster_home").mkdir(parents=True)
    shutil.copy(REPO / "data" / "dagster_home" / "dagster.yaml", folder / "data" / "dagster_home")
    (folder / "data" / "expirytrack.yaml").write_text(
        'underlyings:\n  - symbol: RELIANCE\n    instrument_key: "NSE_EQ|INE002A01018"\n'
        "collection:\n  lookback_months: 1\n  contract_types: [FUT, CE]\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("UPSTOX_", "EXPIRYTRACK_"))},
        "DAGSTER_HOME": str(folder / "data" / "dagster_home"),  # as the Makefile sets it
        "EXPIRYTRACK_CREDENTIALS_DIR": str(folder / "credentials"),  # no stored login
        "PYTHONPATH": str(REPO),
    }
    done = subprocess.run(
        [sys.executable, "-m", "expirytrack_dagster.cli", "demo", "--underlyings", "RELIANCE"],
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (key,) = re.findall(r"^Collecting 1 partition: (\S+)$", done.stdout, re.M)
    return Demo(folder, key, done.stdout)


def test_demo_collects_through_dagster_and_says_where_the_data_came_from(demo: Demo) -> None:
    out = demo.out
    assert "SANDBOX" in out and "synthetic" in out
    assert "partitions    : 1" in out
    assert re.search(r"^  coverage_report: run \w{8} ok in [\d.]+s, 1 partitions$", out, re.M)
    # The files the summary names (the sandbox's own, under data/sandbox/), read back.
    (database,) = re.findall(r"^  database      : (.+) \([\d.]+ [KMG]?B\)$", out, re.M)
    (home,) = re.findall(r"^Dagster instance: (.+)$", out, re.M)
    assert Path(database).is_relative_to(demo.folder / "data" / "sandbox")
    with duckdb.connect(database, read_only=True) as db:
        candles = db.execute("SELECT count(*) FROM candles").fetchone()[0]
    requests_line = next(line for line in out.splitlines() if "API requests" in line)
    assert f"candles       : {candles:,}" in out and candles > 0
    assert int(requests_line.split(":")[1].split("(")[0].replace(",", "")) > 0
    with DagsterInstance.from_config(home) as instance:
        runs = instance.get_runs(RunsFilter(job_name="collect_expiry"))
    assert [r.status for r in runs] == [DagsterRunStatus.SUCCESS]


def test_the_python_example_runs_against_the_demo_output(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, key = demo.folder, demo.key
    monkeypatch.chdir(folder)
    (code,) = blocks("python")
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["key"] == key  # the partition the demo made, found by query
    chain = namespace["chain"]
    assert len(chain) > 0 and set(chain["instrument_type"]) <= {"FUT", "CE"}
    assert "FUT" in set(chain["instrument_type"])  # a future trades at 15:00 on its expiry day
    report = namespace["report"]
    assert list(report["partition_key"]) == [key] and report["candles"].iloc[0] > 0
