"""`expirytrack` commands as a user runs them: input errors, partitions, backfill, dev.

(`expirytrack demo` end to end is in ``test_readme``: one demo run serves both.)"""

from __future__ import annotations

import fcntl
import io
import os
import pty
import shutil
import socket
import subprocess
import sys
import termios
import time
from pathlib import Path

import httpx
import pytest
from dagster import DagsterInstance, DagsterRunStatus

from expirytrack_dagster.cli import main, plural
from expirytrack_dagster.partitions import expiry_partitions
from expirytrack_dagster_tests.cli_project import answer_on_a_terminal, cli, project_sandbox

REPO = Path(__file__).resolve().parents[1]


# -- Input errors: one line, the bad value, the accepted form, exit code 2 ---------------------


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory watching RELIANCE and TCS, with its own Dagster instance."""
    settings = tmp_path / "expirytrack.yaml"
    settings.write_text(
        'underlyings:\n  - symbol: RELIANCE\n    instrument_key: "NSE_EQ|INE002A01018"\n'
        '  - symbol: TCS\n    instrument_key: "NSE_EQ|INE467B01029"\n'
    )
    monkeypatch.setenv("EXPIRYTRACK_CONFIG", str(settings))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    return tmp_path


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own errors exit rather than return
        code = exc.code
    printed = capsys.readouterr()
    assert code == 2, printed
    assert printed.out == "" and "Traceback" not in printed.err
    assert len(printed.err.strip().splitlines()) == 1, printed.err
    return printed.err


@pytest.mark.parametrize(
    ("argv", "named", "accepted"),
    [
        (["backfill", "RELIANCE", "--since", "2026/11/01"], "'2026/11/01'", "YYYY-MM-DD"),
        (["partitions", "RELIANCE", "--until", "31-12-2025"], "'31-12-2025'", "YYYY-MM-DD"),
        (["backfill", "FOO"], "'FOO'", "RELIANCE, TCS (or add it under 'underlyings:'"),
        (["partitions", "FOO"], "'FOO'", "RELIANCE, TCS (or add it under 'underlyings:'"),
        (
            ["demo", "--underlyings", "RELIANCE,FOO"],
            "'FOO'",
            "RELIANCE, TCS (or add it under 'underlyings:'",
        ),
        (["backfill", "RELIANCE", "--limit", "0"], "'0'", "whole number >= 1"),
        (["demo", "--per-underlying", "two"], "'two'", "whole number >= 1"),
        (["dev", "--port", "99999"], "'99999'", "1 to 65535"),
        (["partitions"], "an underlying", "expirytrack partitions NIFTY"),
        (["demo", "--underlyings", ","], "no underlying given", "RELIANCE, TCS"),
        (["login", "--timeout", "-5"], "'-5'", "positive number of seconds"),
        (["status", "--margin-minutes", "soon"], "'soon'", "whole number of minutes"),
        (["nonsense"], "'nonsense'", "choose from 'demo'"),
        (["backfill", "RELIANCE", "--nonsense"], "--nonsense", "--help"),
        (
            ["backfill", "RELIANCE", "--since", "2025-09-01", "--until", "2025-08-01"],
            "--since 2025-09-01",
            "earlier date first",
        ),
    ],
)
def test_bad_input_is_one_line_naming_value_and_form(
    capsys: pytest.CaptureFixture[str], project: Path, argv: list[str], named: str, accepted: str
) -> None:
    err = one_line_error(capsys, *argv)
    assert named in err and accepted in err
    assert not (project / "dagster_home").exists()  # refused before touching anything


def test_counts_are_pluralised() -> None:
    assert [plural(n, "partition") for n in (0, 1, 2, 1234)] == [
        "0 partitions",
        "1 partition",
        "2 partitions",
        "1,234 partitions",
    ]


# -- Partition keys that are not ours ------------------------------------------------------------


def test_foreign_partition_keys_are_reported_once_skipped_and_removable(
    capsys: pytest.CaptureFixture[str], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = ["RELIANCE_2025-08-28", "RELIANCE_2025-09-30", "TCS_2025-09-30"]
    with DagsterInstance.from_config(str(mkhome(project))) as instance:
        instance.add_dynamic_partitions(expiry_partitions.name, [*ours, "nifty-test", "x"])

    assert main(["partitions", "RELIANCE", "--missing"]) == 0
    printed = capsys.readouterr()
    assert printed.out == "RELIANCE_2025-08-28,RELIANCE_2025-09-30\n"
    (line,) = printed.err.strip().splitlines()
    assert "2 partition keys" in line and "nifty-test, x" in line
    assert "expirytrack partitions --remove-foreign" in line

    # Removing needs a yes: no terminal here, so --yes.
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["partitions", "--remove-foreign"]) == 2
    assert "pass --yes" in capsys.readouterr().err
    assert main(["partitions", "--remove-foreign", "--yes"]) == 0
    assert "Removed 2 partition keys" in capsys.readouterr().out
    with DagsterInstance.from_config(str(project / "dagster_home")) as instance:
        assert sorted(instance.get_dynamic_partitions(expiry_partitions.name)) == ours
    assert main(["partitions", "RELIANCE"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["partitions", "--remove-foreign"]) == 0
    assert "No partition keys to remove" in capsys.readouterr().out


def mkhome(root: Path) -> Path:
    home = root / "dagster_home"
    home.mkdir(exist_ok=True)
    return home


# -- backfill: the estimate first, then a yes -----------------------------------------------------


def test_backfill_dry_run_prints_the_plan_and_spends_nothing(tmp_path: Path) -> None:
    with cli(tmp_path, project_sandbox()) as c:
        done = c.main("backfill", "RELIANCE", "--dry-run")
        stats = c.sandbox.stats()["by_kind"]
        runs = c.runs()
    assert done.returncode == 0, done.stderr[-3000:]
    assert "12 partitions of RELIANCE" in done.stdout and "API requests" in done.stdout
    assert "Dry run: nothing was collected." in done.stdout
    assert runs == []
    assert stats["candles"] == 0 and stats["future_contracts"] == 0
    assert stats["expiries"] == 1  # discovery: the one listing the estimate needs


def test_backfill_without_a_terminal_needs_yes(tmp_path: Path) -> None:
    with cli(tmp_path, project_sandbox()) as c:
        done = c.main("backfill", "RELIANCE")
        runs = c.runs()
        candles = c.sandbox.stats()["by_kind"]["candles"]
    assert done.returncode == 2
    assert "API requests" in done.stdout  # the estimate is shown first
    (line,) = done.stderr.strip().splitlines()
    assert "pass --yes" in line
    assert runs == [] and candles == 0


def test_backfill_asks_on_a_terminal(tmp_path: Path) -> None:
    with cli(tmp_path, project_sandbox()) as c:
        code, printed = answer_on_a_terminal(c.main, "n", "backfill", "RELIANCE")
        assert code == 1 and "Start 12 runs, one per partition? [y/N]" in printed
        assert "Nothing collected." in printed
        assert c.runs() == [] and c.sandbox.stats()["by_kind"]["candles"] == 0

        code, printed = answer_on_a_terminal(c.main, "y", "backfill", "RELIANCE", "--limit", "1")
        assert code == 0, printed[-3000:]
        assert "1 partition of RELIANCE" in printed and "Start 1 run, one per partition?" in printed
        assert [r.status for r in c.runs()] == [DagsterRunStatus.SUCCESS]


# -- dev: Ctrl-C stops dagster dev and everything it started ------------------------------------


def processes() -> list[tuple[int, str, int, int]]:
    """(pid, state, parent pid, process group) of every process, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found.append((int(stat.parent.name), fields[0], int(fields[1]), int(fields[2])))
    return found


def children_of(pid: int) -> list[int]:
    return [child for child, _, parent, _ in processes() if parent == pid]


def group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs (a zombie awaiting its reaper does not)."""
    return any(group == pgid and state != "Z" for _, state, _, group in processes())


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds dagster dev's processes in /proc")
def test_dev_stops_on_ctrl_c(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "data" / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("UPSTOX_", "EXPIRYTRACK_"))},
        "DAGSTER_HOME": str(home),
        "EXPIRYTRACK_DATABASE": str(tmp_path / "expirytrack.duckdb"),
        "EXPIRYTRACK_LANDING_DIR": str(tmp_path / "landing"),
        "EXPIRYTRACK_STATE_DIR": str(tmp_path / "state"),
        "EXPIRYTRACK_CREDENTIALS_DIR": str(tmp_path / "credentials"),
        "PYTHONPATH": str(REPO),
    }
    leader, follower = pty.openpty()

    def in_a_terminal() -> None:  # a session whose controlling terminal is the pty, as a shell's
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    with (tmp_path / "dev.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "expirytrack_dagster.cli", "dev", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdin=follower,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=in_a_terminal,
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, (tmp_path / "dev.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "dagster dev never answered"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/server_info").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        (dagster_dev,) = children_of(process.pid)
        assert group_alive(dagster_dev)

        os.write(leader, b"\x03")  # Ctrl-C typed at the terminal
        assert process.wait(timeout=120) == 130
        deadline = time.monotonic() + 60  # killed processes vanish a moment after the kill
        while group_alive(dagster_dev):  # web server, daemon and code server
            assert time.monotonic() < deadline, "dagster dev left processes behind"
            time.sleep(0.2)
        assert "stopping Dagster" in (tmp_path / "dev.log").read_text()
    finally:
        os.close(leader)
        os.close(follower)
        if process.poll() is None:
            process.kill()
            process.wait()
