"""Synthetic data only on purpose, and then into data/sandbox/: definitions and the demo's home."""

from __future__ import annotations

from pathlib import Path

import pytest

from expirytrack_dagster.definitions import build_definitions
from expirytrack_dagster.resources import UpstoxResource
from expirytrack_dagster.sandbox_resource import SandboxResource
from expirytrack_dagster.sandbox_stores import use_sandbox_dagster_home

PATH_VARS = (
    "EXPIRYTRACK_SOURCE",
    "EXPIRYTRACK_DATABASE",
    "EXPIRYTRACK_LANDING_DIR",
    "EXPIRYTRACK_STATE_DIR",
    "UPSTOX_ACCESS_TOKEN",
)


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in PATH_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("EXPIRYTRACK_CONFIG", str(tmp_path / "expirytrack.yaml"))
    monkeypatch.setenv("EXPIRYTRACK_CREDENTIALS_DIR", str(tmp_path / "credentials"))


def test_the_default_source_is_upstox_and_never_falls_back_to_the_sandbox() -> None:
    defs = build_definitions({})
    upstox = defs.resources["upstox"]
    assert upstox.resolved_source() == "upstox"  # no token configured or stored, still Upstox
    assert type(upstox) is UpstoxResource
    assert UpstoxResource(source="auto").resolved_source() == "upstox"
    assert defs.resources["collection"].database == "data/expirytrack.duckdb"
    assert defs.resources["io_manager"].source == "upstox"


def test_sandbox_runs_default_to_their_own_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPIRYTRACK_SOURCE", "sandbox")
    defs = build_definitions({})
    collection = defs.resources["collection"]
    assert collection.database == "data/sandbox/expirytrack.duckdb"
    assert collection.landing_dir == "data/sandbox/landing"
    assert isinstance(defs.resources["upstox"], SandboxResource)  # chosen, not a fallback
    assert defs.resources["upstox"].state_dir == "data/sandbox/state"
    io_manager = defs.resources["io_manager"]
    assert (io_manager.source, io_manager.landing_dir) == ("sandbox", "data/sandbox/landing")
    # Paths set on purpose win (the stores' source marks still keep the sources apart).
    monkeypatch.setenv("EXPIRYTRACK_DATABASE", "elsewhere.duckdb")
    assert build_definitions({}).resources["collection"].database == "elsewhere.duckdb"


def test_the_demo_uses_its_own_dagster_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    real = tmp_path / "data" / "dagster_home"
    real.mkdir(parents=True)
    (real / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(real))  # as `make demo` exports it
    home = use_sandbox_dagster_home()
    assert home == tmp_path / "data" / "sandbox" / "dagster_home"
    assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "chosen"))  # another instance on purpose
    assert use_sandbox_dagster_home() == tmp_path / "chosen"
