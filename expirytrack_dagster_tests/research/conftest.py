"""One small collected sandbox partition, shared by the research API and CLI tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from expirytrack_dagster.sandbox.market import SyntheticMarket
from expirytrack_dagster_tests.pipeline import TINY_NIFTY, pipeline, sandbox_config

EXPIRY = date(2025, 8, 28)
"""NIFTY's monthly expiry of August 2025 (a Thursday; it has a future)."""


@dataclass(frozen=True)
class Collected:
    """A collected partition: its database file and the sandbox market that made its prices."""

    database: Path
    market: SyntheticMarket
    expiry: date = EXPIRY


@pytest.fixture(scope="session")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collected]:
    """NIFTY_2025-08-28 collected once (one month of candles) from an in-process sandbox."""
    root = tmp_path_factory.mktemp("research_partition")
    config = sandbox_config(seed=21, today=date(2025, 9, 1), extra_profiles=(TINY_NIFTY,))
    with pipeline(root, config, lookback_months=1) as p:
        key = p.partition("NIFTY", EXPIRY)
        assert p.materialize(key).success
        yield Collected(p.database, p.sandbox.market)
