"""Atomic writes: the target holds the old bytes or the new ones, never a mix, whatever happens."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from expirytrack_dagster.atomic_write import TEMP_MARK, atomic_write, write_bytes_atomically


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_replaces_the_file_and_leaves_nothing_beside_it(tmp_path: Path) -> None:
    target = tmp_path / "report.md"
    target.write_bytes(b"old")
    write_bytes_atomically(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]


def test_the_old_bytes_stay_readable_until_the_block_ends(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    with atomic_write(target) as handle:
        handle.write(b"half of the new")
        assert target.read_bytes() == b"old"
        (temp,) = [p for p in tmp_path.iterdir() if p != target]
        assert temp.name.startswith(".data.bin" + TEMP_MARK)
    assert target.read_bytes() == b"half of the new"


def test_an_error_in_the_block_keeps_the_old_file_and_removes_the_temporary(
    tmp_path: Path,
) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_write(target) as handle:
        handle.write(b"partial")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


def test_creates_a_missing_file(tmp_path: Path) -> None:
    target = tmp_path / "fresh.json"
    write_bytes_atomically(target, b"{}")
    assert target.read_bytes() == b"{}"


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_private_files_are_0600_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        write_bytes_atomically(tmp_path / "secret", b"token", private=True)
        write_bytes_atomically(tmp_path / "public", b"report")
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "secret") == 0o600
    assert _mode(tmp_path / "public") == 0o666


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_replacing_a_file_does_not_inherit_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    target.write_bytes(b"old")
    target.chmod(0o644)
    write_bytes_atomically(target, b"new", private=True)
    assert _mode(target) == 0o600


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_writer_killed_mid_write_leaves_the_old_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from expirytrack_dagster.atomic_write import atomic_write\n"
        "with atomic_write(Path(sys.argv[1])) as handle:\n"
        "    handle.write(b'x' * 100_000)\n"
        "    handle.flush()\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "writing"
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.wait(timeout=30)
        if writer.stdout is not None:
            writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL
    assert target.read_bytes() == b"old"
    (leftover,) = [p for p in tmp_path.iterdir() if p != target]
    assert TEMP_MARK in leftover.name and leftover.stat().st_size == 100_000
