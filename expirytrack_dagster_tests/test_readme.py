"""The README's code runs: its Python block executed against what `expirytrack demo` just built.

The demo runs as ``make demo`` runs it (default paths, relative to a fresh project folder, no
token), on one small underlying so the test takes a minute; the block is then executed from that
folder as a user would paste it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.fixture
def demo_folder(tmp_path: Path) -> tuple[Path, str]:
    """A fresh project folder after ``expirytrack demo`` (sandbox) on one RELIANCE partition."""
    (tmp_path / "data" / "dagster_home").mkdir(parents=True)
    shutil.copy(REPO / "data" / "dagster_home" / "dagster.yaml", tmp_path / "data" / "dagster_home")
    (tmp_path / "data" / "expirytrack.yaml").write_text(
        'underlyings:\n  - symbol: RELIANCE\n    instrument_key: "NSE_EQ|INE002A01018"\n'
        "collection:\n  lookback_months: 1\n  contract_types: [FUT, CE]\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("UPSTOX_", "EXPIRYTRACK_"))},
        "DAGSTER_HOME": str(tmp_path / "data" / "dagster_home"),  # as the Makefile sets it
        "EXPIRYTRACK_CREDENTIALS_DIR": str(tmp_path / "credentials"),  # no stored login
        "PYTHONPATH": str(REPO),
    }
    done = subprocess.run(
        [sys.executable, "-m", "expirytrack_dagster.cli", "demo", "--underlyings", "RELIANCE"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(
        r"^  coverage_report: run \w{8} ok in [\d.]+s, 1 partitions$", done.stdout, re.M
    )
    (key,) = re.findall(r"^Collecting 1 partition: (\S+)$", done.stdout, re.M)
    return tmp_path, key


def test_the_python_example_runs_against_the_demo_output(
    demo_folder: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, key = demo_folder
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
