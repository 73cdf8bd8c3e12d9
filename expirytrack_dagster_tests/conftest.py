"""Shared fixtures: recorded Upstox samples and a path helper."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from expirytrack_dagster.startup_gc import long_lived_objects

SAMPLES = Path(__file__).parent / "fixtures" / "upstox_samples"


def load_sample(name: str) -> Any:
    """One recorded Upstox response from fixtures/upstox_samples (copied from the real API)."""
    return json.loads((SAMPLES / name).read_text())


@pytest.hookimpl(optionalhook=True, tryfirst=True)  # optional: ``-p no:xdist`` runs too
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` (``make test``): one worker more than the CPUs this process may use.

    About a fifth of the suite's time is spent waiting, not computing: on the processes a test
    starts (CLI, Dagster runs, servers), on sockets and on the rate limiter's real windows. A
    spare worker computes meanwhile (2 CPUs: 256 s with 3 workers against 287 s with 2).
    ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still decides when set.
    """
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None  # not macOS
    return (len(usable) if usable else os.cpu_count() or 1) + 1


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session):
    """Import the test modules (and with them Dagster, pandas, DuckDB, the package) with the
    cyclic garbage collector paused, then freeze what they made.

    Imports allocate hundreds of thousands of long-lived objects and almost no garbage, so the
    collector's passes during them find nothing (about a fifth of an import's CPU). Frozen, those
    objects are no longer walked by every later full collection: on ``collection`` and
    ``checks``, the collector's CPU fell from 5.5-6.1 s to 1.3-1.8 s of about 50-60 s
    (``startup_gc`` is the same for the product's processes).
    """
    with long_lived_objects():
        return (yield)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A private directory for limiter ledgers and learned window spans."""
    path = tmp_path / "state"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server on loopback, one per xdist worker (see ``postgres_server.py``)."""
    from expirytrack_dagster_tests.postgres_server import running_postgres

    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_dsn(postgres_server) -> str:
    """A fresh, empty database on the shared test server: its libpq URL."""
    return postgres_server.dsn(postgres_server.create_database())
