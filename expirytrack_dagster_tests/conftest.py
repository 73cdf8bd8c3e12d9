"""Shared fixtures: recorded Upstox samples and a path helper."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SAMPLES = Path(__file__).parent / "fixtures" / "upstox_samples"


def load_sample(name: str) -> Any:
    """One recorded Upstox response from fixtures/upstox_samples (copied from the real API)."""
    return json.loads((SAMPLES / name).read_text())


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A private directory for limiter ledgers and learned window spans."""
    path = tmp_path / "state"
    path.mkdir()
    return path
