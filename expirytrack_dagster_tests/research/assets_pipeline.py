"""Helpers for the research asset tests: a small NIFTY collected, checked and researched for real."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from dagster import Definitions, ExecuteInProcessResult, materialize

from expirytrack_dagster.assets.research import RESEARCH_ASSETS
from expirytrack_dagster.checks import (
    ALL_CHECKS,
    RESEARCH_CHECKS,
    candle_quality_checks,
    contract_quality_checks,
)
from expirytrack_dagster.research.settings import ResearchSettings
from expirytrack_dagster.sandbox import FaultConfig
from expirytrack_dagster.sandbox.profiles import UnderlyingProfile
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster_tests.pipeline import (
    ASSETS,
    SMALL_NIFTY,
    Pipeline,
    pipeline,
    sandbox_config,
)

TODAY = date(2025, 10, 1)
AUGUST = date(2025, 8, 28)
SEPTEMBER = date(2025, 9, 30)
EVERYTHING = [*ASSETS, *RESEARCH_ASSETS, *ALL_CHECKS, *RESEARCH_CHECKS]
COLLECT_CHECKS = [contract_quality_checks, candle_quality_checks]
"""The checks of the collection assets (the ones whose blocking failures gate research)."""


@contextmanager
def nifty_pipeline(
    root: Path,
    contract_types: tuple[str, ...] = ("CE", "PE", "FUT"),
    profile: UnderlyingProfile = SMALL_NIFTY,
    **sandbox: Any,
) -> Iterator[Pipeline]:
    """NIFTY's calendar and prices with ``profile``'s strikes (``SMALL_NIFTY`` by default), one
    month of candles before each expiry; ``sandbox`` fields (``faults``…) configure the sandbox."""
    config = sandbox_config(seed=21, today=TODAY, extra_profiles=(profile,), **sandbox)
    with pipeline(root, config, lookback_months=1, contract_types=list(contract_types)) as p:
        yield p


def resources(p: Pipeline, research: ResearchSettings | None = None) -> dict[str, Any]:
    return {**p.resources(), "research": research or ResearchSettings()}


def run(
    p: Pipeline,
    key: str,
    selection: list | None = None,
    research: ResearchSettings | None = None,
    collection: CollectionSettings | None = None,
) -> ExecuteInProcessResult:
    """Materialise ``selection`` (default: collection, research and every check) for ``key``."""
    return materialize(
        selection or EVERYTHING,
        partition_key=key,
        instance=p.instance,
        resources={**resources(p, research), "collection": collection or p.collection},
        raise_on_error=False,
    )


def definitions(p: Pipeline) -> Definitions:
    """The project's assets and checks over this pipeline's resources (for automation tests)."""
    return Definitions(
        assets=[*ASSETS, *RESEARCH_ASSETS],
        asset_checks=[*ALL_CHECKS, *RESEARCH_CHECKS],
        resources=resources(p),
    )


def spoil(kind: str) -> FaultConfig:
    """Spoil the first candle response, and only that one, with corruption ``kind``."""
    return FaultConfig(
        corrupt_candles=1.0,
        corruption_kinds=(kind,),
        only_paths=("historical-candle",),
        max_count=1,
        seed=0,
    )


def started_steps(result: ExecuteInProcessResult) -> set[str]:
    """Steps that began; one whose upstream failed a blocking check never starts."""
    return {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}


def materialized(result: ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def check_verdicts(result: ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
