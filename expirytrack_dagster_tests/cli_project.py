"""`expirytrack` as a user runs it: a child process on a fresh project directory and a sandbox."""

from __future__ import annotations

import io
import os
import pty
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, DagsterRun, RunsFilter

from expirytrack_dagster.sandbox import Sandbox, SandboxConfig, run_sandbox

REPO = Path(__file__).resolve().parents[1]
RELIANCE = "NSE_EQ|INE002A01018"
DEFINITIONS = "expirytrack_dagster.definitions"


def call_main(
    argv: tuple[str, ...] | list[str], env: dict[str, str], cwd: Path, stdin: Any = None
) -> subprocess.CompletedProcess[str]:
    """``expirytrack ARGV`` called in this process (``cli.main``): the environment is ``env``
    exactly (no ``UPSTOX_``/``EXPIRYTRACK_`` variable of the test process leaks in), the working
    directory ``cwd``, stdin ``stdin`` (default: empty, not a terminal); all restored after.
    ``expirytrack_dagster.definitions`` builds its ``defs`` from the settings when first imported,
    so it is imported afresh for the call (as a new process would) and the test process's module
    put back after. Returns what ``subprocess.run`` would: exit code, stdout and stderr."""
    from expirytrack_dagster.cli import main

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.delitem(sys.modules, DEFINITIONS, raising=False)  # undo puts the original back
        for name in os.environ:
            if name.startswith(("UPSTOX_", "EXPIRYTRACK_")):
                patch.delenv(name)
        patch.delenv("DAGSTER_HOME", raising=False)  # the CLI may set it: undone after the call
        for name, value in env.items():
            patch.setenv(name, value)
        patch.chdir(cwd)
        patch.setattr(sys, "stdin", stdin if stdin is not None else io.StringIO(""))
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(argv))
            except SystemExit as stop:  # argparse's usage errors exit
                code = stop.code if isinstance(stop.code, int) else 1
            finally:
                sys.modules.pop(DEFINITIONS, None)  # this call's defs, built from env
    return subprocess.CompletedProcess(list(argv), code, out.getvalue(), err.getvalue())


def answer_on_a_terminal(
    call: Callable[..., subprocess.CompletedProcess[str]], answer: str, *argv: str
) -> tuple[int, str]:
    """``call(*argv, stdin=…)`` (``Cli.main`` or ``Project.main``) with a pseudo-terminal as
    stdin, ``answer`` typed on it; the exit code and everything printed."""
    leader, follower = pty.openpty()
    try:
        os.write(leader, answer.encode() + b"\n")
        with open(follower, closefd=False) as terminal:
            done = call(*argv, stdin=terminal)
    finally:
        os.close(leader)
        os.close(follower)
    return done.returncode, done.stdout + done.stderr


@dataclass
class Cli:
    """Runs ``expirytrack`` against one sandbox, DAGSTER_HOME and database under ``root``."""

    root: Path
    sandbox: Sandbox

    @property
    def home(self) -> Path:
        return self.root / "dagster_home"

    def env(self) -> dict[str, str]:
        return {
            **{
                k: v for k, v in os.environ.items() if not k.startswith(("UPSTOX_", "EXPIRYTRACK_"))
            },
            "DAGSTER_HOME": str(self.home),
            "EXPIRYTRACK_CONFIG": str(self.root / "expirytrack.yaml"),
            "EXPIRYTRACK_DATABASE": str(self.root / "expirytrack.duckdb"),
            "EXPIRYTRACK_LANDING_DIR": str(self.root / "landing"),
            "EXPIRYTRACK_STATE_DIR": str(self.root / "state"),
            "EXPIRYTRACK_CREDENTIALS_DIR": str(self.root / "credentials"),
            "EXPIRYTRACK_SOURCE": "sandbox",
            "EXPIRYTRACK_SANDBOX_URL": self.sandbox.base_url,
            "EXPIRYTRACK_SANDBOX_TOKEN": self.sandbox.access_token,
            "EXPIRYTRACK_SANDBOX_CA": str(self.sandbox.ca_cert_path),
            "PYTHONPATH": str(REPO),
        }

    def start(self, *argv: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "expirytrack_dagster.cli", *argv],
            env=self.env(),
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def start_with_stdin(self, stdin: int, *argv: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "expirytrack_dagster.cli", *argv],
            env=self.env(),
            cwd=self.root,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "expirytrack_dagster.cli", *argv],
            env=self.env(),
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def main(self, *argv: str, stdin: Any = None) -> subprocess.CompletedProcess[str]:
        """``expirytrack ARGV`` called in this process (``cli.main``) with this project's
        environment and working directory, and ``stdin`` (default: empty, not a terminal).

        For commands whose subject is what they print and do, not how a process behaves: no
        interpreter start, imports or calendar to pay again. Runs the command starts are still
        child processes, as for a user (they inherit the environment set here).
        """
        return call_main(argv, self.env(), self.root, stdin)

    @cached_property
    def instance(self) -> DagsterInstance:
        """The project's Dagster instance (its SQLite storage under ``home``), opened once: the
        tests poll it while the CLI's processes write to it, and each read sees their writes.
        Closed when ``cli()`` exits."""
        return DagsterInstance.from_config(str(self.home))

    def runs(self) -> list[DagsterRun]:
        return list(self.instance.get_runs(RunsFilter(job_name="collect_expiry")))


@contextmanager
def cli(root: Path, config: SandboxConfig) -> Iterator[Cli]:
    """A sandbox and a fresh project directory watching RELIANCE (a few small partitions)."""
    home = root / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(REPO / "data" / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    (root / "expirytrack.yaml").write_text(
        f'underlyings:\n  - symbol: RELIANCE\n    instrument_key: "{RELIANCE}"\n'
        "collection:\n  lookback_months: 1\n  contract_types: [FUT]\n"
    )
    with run_sandbox(config) as sandbox:
        project = Cli(root, sandbox)
        try:
            yield project
        finally:
            if "instance" in project.__dict__:
                project.__dict__.pop("instance").dispose()


def project_sandbox(**fields: Any) -> SandboxConfig:
    """RELIANCE's sandbox on a fixed day (12 final expiries), rate windows off."""
    fields.setdefault("seed", 5)
    fields.setdefault("today", date(2025, 10, 1))
    for window in ("per_second", "per_minute", "per_30_minutes"):
        fields.setdefault(window, None)
    return SandboxConfig(**fields)
