"""The candle checks against the sandbox: clean data passes, each corruption fails its own check."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetCheckKey, AssetCheckSeverity, AssetKey, ExecuteInProcessResult

from expirytrack_dagster.assets import candles
from expirytrack_dagster.calendar import trading_days_between
from expirytrack_dagster.definitions import defs
from expirytrack_dagster.quality import RULE_SEVERITY, RULES
from expirytrack_dagster.sandbox import FaultConfig
from expirytrack_dagster_tests.checks.conftest import (
    EXPIRY,
    WINDOW,
    contract_key,
    evaluations,
    failed_checks,
    figures,
    materialized,
    reliance_pipeline,
    reliance_watched,
    run_everything,
    served_candles,
    started_steps,
    stored_candles,
)
from expirytrack_dagster_tests.pipeline import Pipeline

ALL_RULES = {rule.name for rule in RULES}


@pytest.fixture(scope="module")
def clean(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Pipeline, str, ExecuteInProcessResult]]:
    """Every contract of RELIANCE 2025-08-28, collected and checked once for the whole module."""
    root = tmp_path_factory.mktemp("clean")
    with reliance_watched(root), reliance_pipeline(root) as p:
        key = p.partition("RELIANCE", EXPIRY)
        yield p, key, run_everything(p, key)


@pytest.fixture
def futures_only(tmp_path: Path) -> Iterator[Callable[[FaultConfig], Pipeline]]:
    """Start a futures-only pipeline with given faults: one contract keeps these runs fast."""
    with ExitStack() as stack:
        yield lambda faults: stack.enter_context(
            # The API serves the whole window: the first candle answer is the future's data.
            reliance_pipeline(
                tmp_path, faults=faults, contract_types=["FUT"], max_span_days={"1minute": 3650}
            )
        )


def spoil(kind: str, seed: int = 0) -> FaultConfig:
    """Spoil the first candle response, and only that one, with corruption ``kind``."""
    return FaultConfig(
        corrupt_candles=1.0,
        corruption_kinds=(kind,),
        only_paths=("historical-candle",),
        max_count=1,
        seed=seed,
    )


# -- Clean data ----------------------------------------------------------------------------


def test_clean_partition_passes_every_check_and_reaches_the_report(clean) -> None:
    _, _, result = clean
    assert result.success
    assert set(evaluations(result)) == ALL_RULES
    assert {(e.asset_key.to_user_string(), e.check_name) for e in evaluations(result).values()} == {
        (rule.asset, rule.name) for rule in RULES
    }
    assert failed_checks(result) == set()
    assert "coverage_report" in materialized(result)


def test_results_carry_the_rules_severity_and_counts_that_match_the_database(clean) -> None:
    p, key, result = clean
    checks = evaluations(result)
    for name, evaluation in checks.items():
        expected = (
            AssetCheckSeverity.ERROR if RULE_SEVERITY[name] == "ERROR" else AssetCheckSeverity.WARN
        )
        assert evaluation.severity == expected, name
        assert figures(evaluation)["summary"].startswith(f"{name} ")
        assert key in figures(evaluation)["summary"]
    (rows,) = p.query("SELECT count(*) FROM candles WHERE partition_key = ?", [key])[0]
    (listed,) = p.query("SELECT count(*) FROM contracts WHERE partition_key = ?", [key])[0]
    days = len(trading_days_between(*WINDOW))
    assert figures(checks["ohlc_integrity"])["rows"] == rows
    assert figures(checks["ohlc_integrity"])["violating_pct"] == 0.0
    assert figures(checks["fetch_outcomes"])["contract_days"] == listed * days
    assert figures(checks["future_coverage"])["future_days"] == days
    far = figures(checks["far_strike_coverage"])
    assert {"coverage_p0", "coverage_p50", "coverage_p100", "coverage_0_10pct"} <= set(far)
    # RELIANCE's near-money options are thin in the sandbox, as stock options are: every day
    # is reported as a thin market and none is judged, so the rule passes without crying wolf.
    near = figures(checks["near_money_coverage"])
    assert near["thin_market_days"] == days and near["near_money_days_below"] == 0
    assert "worst_contracts" not in figures(checks["ohlc_integrity"])  # nothing to show


def test_each_result_is_recorded_against_its_partition(clean) -> None:
    p, key, _ = clean
    storage = p.instance.event_log_storage
    for rule in RULES:
        history = storage.get_asset_check_execution_history(
            AssetCheckKey(AssetKey(rule.asset), rule.name), limit=5
        )
        assert [record.partition for record in history] == [key], rule.name


def test_the_collect_job_runs_the_checks_and_error_rules_block() -> None:
    # One partition per run: a check result from a multi-partition run loses its partition.
    assert candles.backfill_policy is None or candles.backfill_policy.max_partitions_per_run == 1
    job = defs.resolve_job_def("collect_expiry")
    assert {"contract_quality_checks", "candle_quality_checks"} <= set(job.graph.node_dict)
    assert "coverage_report" not in job.graph.node_dict  # unpartitioned: refreshed on its own
    specs = {
        spec.key.name: spec
        for checks in defs.asset_checks or []
        for spec in checks.check_specs  # type: ignore[union-attr]
        if spec.asset_key.path[0] in ("contracts", "candles")  # the research assets' own aside
    }
    assert set(specs) == ALL_RULES
    for name, spec in specs.items():
        assert spec.blocking == (RULE_SEVERITY[name] == "ERROR"), name
        assert spec.partitions_def is not None


# -- Corruptions ---------------------------------------------------------------------------


def test_bad_ohlc_rows_fail_ohlc_integrity_and_stop_the_report(futures_only) -> None:
    p = futures_only(spoil("ohlc"))
    key = p.partition("RELIANCE", EXPIRY)
    result = run_everything(p, key)
    future = contract_key(p, "FUT")

    # Independently: the stored rows that differ from what the sandbox serves clean.
    both = stored_candles(p, future).merge(served_candles(p, future), on="timestamp")
    prices = ["open", "high", "low", "close"]
    changed = both[
        (
            both[[f"{c}_x" for c in prices]].to_numpy()
            != both[[f"{c}_y" for c in prices]].to_numpy()
        ).any(axis=1)
    ]
    assert len(changed) == 2
    assert failed_checks(result) == {"ohlc_integrity"}
    ohlc = figures(evaluations(result)["ohlc_integrity"])
    assert ohlc["violating_rows"] == len(changed)
    assert ohlc["high_below_low"] == int((changed["high_x"] < changed["low_x"]).sum()) == 1
    assert ohlc["price_not_positive"] == int((changed["close_x"] <= 0).sum()) == 1
    assert ohlc["violating_pct"] == pytest.approx(100 * 2 / ohlc["rows"], abs=1e-4)
    assert future in ohlc["worst_contracts"].replace("\\|", "|")
    assert ohlc["sample_rows"].count("\n") == 3  # header, rule, two offending rows

    # Blocking: the candles stay stored, the report downstream does not run.
    assert not result.success
    assert "candles" in materialized(result)
    assert "coverage_report" not in started_steps(result)


def test_a_duplicated_candle_is_stored_once_and_counted(futures_only) -> None:
    p = futures_only(spoil("duplicate"))
    key = p.partition("RELIANCE", EXPIRY)
    result = run_everything(p, key)
    future = contract_key(p, "FUT")
    stored, served = stored_candles(p, future), served_candles(p, future)

    assert failed_checks(result) == set()
    assert len(stored) == len(served) and stored["timestamp"].is_unique
    meta = result.asset_materializations_for_node("candles")[0].metadata
    assert meta["duplicates_collapsed"].value == 1
    assert figures(evaluations(result)["candle_uniqueness"])["duplicate_rows"] == 0


def test_out_of_session_candle_warns_and_does_not_block(futures_only) -> None:
    p = futures_only(spoil("out_of_session"))
    key = p.partition("RELIANCE", EXPIRY)
    result = run_everything(p, key)
    future = contract_key(p, "FUT")
    stored, served = stored_candles(p, future), served_candles(p, future)
    extra = stored[~stored["timestamp"].isin(served["timestamp"])]
    assert extra["timestamp"].dt.tz_convert("Asia/Kolkata").dt.strftime("%H:%M").tolist() == [
        "08:00"
    ]

    assert failed_checks(result) == {"session_times"}
    session = evaluations(result)["session_times"]
    assert session.severity == AssetCheckSeverity.WARN
    assert figures(session)["outside_session"] == figures(session)["violating_rows"] == len(extra)
    # WARN does not block: the report runs in the same run and shows the warning.
    assert result.success and "coverage_report" in materialized(result)
    row = p.query(
        "SELECT check_status, failed_checks, verdict FROM coverage_report WHERE partition_key = ?",
        [key],
    )
    assert row == [("warn", "session_times", "complete")]


def test_missing_future_day_fails_future_coverage(futures_only) -> None:
    p = futures_only(spoil("missing_day"))
    key = p.partition("RELIANCE", EXPIRY)
    result = run_everything(p, key)
    future = contract_key(p, "FUT")
    stored, served = stored_candles(p, future), served_candles(p, future)

    def days(frame: pd.DataFrame) -> set:
        return set(frame["timestamp"].dt.tz_convert("Asia/Kolkata").dt.date)

    missing = days(served) - days(stored)
    assert len(missing) == 1
    (day,) = missing
    assert (EXPIRY - day).days < 28, "seed 0 should drop a front-month day"
    assert failed_checks(result) == {"future_coverage"}
    coverage = figures(evaluations(result)["future_coverage"])
    assert coverage["front_month_days_below"] == 1
    assert coverage["early_days_below"] == 0
    assert str(day) in coverage["sample_rows"]
    assert "coverage_report" not in started_steps(result)


def test_failed_contract_fails_fetch_outcomes(tmp_path: Path) -> None:
    with reliance_pipeline(tmp_path) as p:
        broken = contract_key(p, "CE")
        p.sandbox.set_faults(FaultConfig(fail_keys=frozenset({broken})))
        key = p.partition("RELIANCE", EXPIRY)
        result = run_everything(p, key, max_attempts=2)

        assert failed_checks(result) == {"fetch_outcomes"}
        outcomes = figures(evaluations(result)["fetch_outcomes"])
        days = len(trading_days_between(*WINDOW))
        failed_rows = p.query("SELECT count(*) FROM candle_fetch_status WHERE status = 'failed'")
        assert outcomes["failed"] == failed_rows[0][0] == days
        assert outcomes["contracts_affected"] == 1
        assert outcomes["missing_outcomes"] == outcomes["count_mismatches"] == 0
        assert broken in outcomes["worst_contracts"].replace("\\|", "|")
        assert "HTTP 500" in outcomes["worst_contracts"]
        assert "coverage_report" not in started_steps(result)
