"""Helpers for check tests: one RELIANCE partition through assets, checks and coverage_report."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dagster import AssetCheckEvaluation, ExecuteInProcessResult

from expirytrack_dagster.assets.coverage import coverage_report
from expirytrack_dagster.checks import ALL_CHECKS
from expirytrack_dagster.storage.database import connect
from expirytrack_dagster_tests.assets.conftest import RELIANCE_KEY, TODAY
from expirytrack_dagster_tests.assets.conftest import settings_file as settings_file  # autouse
from expirytrack_dagster_tests.pipeline import (
    ASSETS,
    SMALL_RELIANCE,
    Pipeline,
    pipeline,
    sandbox_config,
)

EXPIRY = date(2025, 8, 28)
WINDOW = (date(2025, 7, 28), EXPIRY)  # lookback_months=1: a month before expiry through expiry
EVERYTHING = [*ASSETS, *ALL_CHECKS, coverage_report]


@contextmanager
def reliance_watched(root: Path) -> Iterator[None]:
    """RELIANCE in the settings file, for fixtures wider than one test (no ``monkeypatch``)."""
    path = root / "expirytrack.yaml"
    path.write_text(f'underlyings:\n  - symbol: RELIANCE\n    instrument_key: "{RELIANCE_KEY}"\n')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPIRYTRACK_CONFIG", str(path))
        yield


@contextmanager
def reliance_pipeline(root: Path, **fields: Any) -> Iterator[Pipeline]:
    """A RELIANCE pipeline over one month (strikes 40 apart: ``SMALL_RELIANCE``); sandbox fields (``faults``…) and collection fields
    (``contract_types``…) are told apart by name."""
    collection = {k: fields.pop(k) for k in ("contract_types", "interval") if k in fields}
    fields.setdefault("extra_profiles", (SMALL_RELIANCE,))
    with pipeline(
        root, sandbox_config(seed=21, today=TODAY, **fields), lookback_months=1, **collection
    ) as p:
        yield p


def run_everything(p: Pipeline, key: str, **upstox: Any) -> ExecuteInProcessResult:
    """Collect ``key``, run every check and coverage_report in one run, as a user would."""
    return p.materialize(key, selection=EVERYTHING, raise_on_error=False, **upstox)


def evaluations(result: ExecuteInProcessResult) -> dict[str, AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def failed_checks(result: ExecuteInProcessResult) -> set[str]:
    return {name for name, e in evaluations(result).items() if not e.passed}


def figures(evaluation: AssetCheckEvaluation) -> dict[str, Any]:
    """The evaluation's metadata values (counts, percentages, markdown, summary)."""
    return {name: value.value for name, value in evaluation.metadata.items()}


def materialized(result: ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def started_steps(result: ExecuteInProcessResult) -> set[str]:
    """Steps that began; one whose upstream failed (a blocking check) never starts."""
    return {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}


def stored_candles(p: Pipeline, instrument_key: str) -> pd.DataFrame:
    """One contract's stored candles, timestamps in UTC so they compare with the sandbox's."""
    with connect(p.database, read_only=True) as db:
        frame = db.execute(
            'SELECT "timestamp", open, high, low, close, volume, open_interest FROM candles '
            'WHERE expired_instrument_key = ? ORDER BY "timestamp"',
            [instrument_key],
        ).df()
    frame["timestamp"] = frame["timestamp"].dt.tz_convert("UTC").dt.as_unit("ns")
    return frame


def served_candles(p: Pipeline, instrument_key: str) -> pd.DataFrame:
    """What the sandbox serves for the contract over the window, before any fault."""
    frame = p.sandbox.market.candles(instrument_key, "1minute", *WINDOW)
    frame["timestamp"] = frame["timestamp"].dt.tz_convert("UTC").dt.as_unit("ns")
    return frame


def contract_key(p: Pipeline, instrument_type: str) -> str:
    """The first served contract of ``instrument_type`` for the RELIANCE expiry."""
    served = p.sandbox.market.contracts(RELIANCE_KEY, EXPIRY)
    return next(c["instrument_key"] for c in served if c["instrument_type"] == instrument_type)
