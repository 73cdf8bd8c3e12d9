"""Fixtures for pipeline tests: a settings file that adds a stock underlying, and TODAY."""

from __future__ import annotations

from pathlib import Path

import pytest

from expirytrack_dagster_tests.pipeline import RELIANCE_KEY, watch_underlying
from expirytrack_dagster_tests.pipeline import STOCK_TODAY as TODAY

__all__ = ["RELIANCE_KEY", "TODAY"]


@pytest.fixture(autouse=True)
def settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Watch RELIANCE too, the way a user would: one entry in the settings file."""
    return watch_underlying(tmp_path, monkeypatch)
