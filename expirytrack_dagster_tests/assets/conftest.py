"""Fixtures for pipeline tests: a settings file that adds a stock underlying, and TODAY."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

TODAY = date(2025, 10, 1)
RELIANCE_KEY = "NSE_EQ|INE002A01018"


@pytest.fixture(autouse=True)
def settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Watch RELIANCE too, the way a user would: one entry in the settings file."""
    path = tmp_path / "expirytrack.yaml"
    path.write_text(f'underlyings:\n  - symbol: RELIANCE\n    instrument_key: "{RELIANCE_KEY}"\n')
    monkeypatch.setenv("EXPIRYTRACK_CONFIG", str(path))
    return path
