"""The research assets follow candles only past their blocking checks (real instance, real runs).

Futures-only NIFTY partitions keep the collection small; what is tested is Dagster's decision,
made by ``evaluate_automation_conditions`` on the real instance holding the runs' events.
"""

from __future__ import annotations

from pathlib import Path

from dagster import AssetKey, evaluate_automation_conditions, materialize

from expirytrack_dagster.assets.research import CHAIN_TABLES, CONTINUOUS_FUTURES, continuous_futures
from expirytrack_dagster_tests.pipeline import ASSETS
from expirytrack_dagster_tests.research.assets_pipeline import (
    AUGUST,
    COLLECT_CHECKS,
    EVERYTHING,
    check_verdicts,
    definitions,
    materialized,
    nifty_pipeline,
    resources,
    run,
    spoil,
    started_steps,
)

WHOLE_WINDOW = {"max_span_days": {"1minute": 3650}}  # the first candle answer is the future's


def requested(result, key: AssetKey) -> set[str]:
    return set(result.get_requested_partitions(key))


def test_a_partition_that_passed_its_blocking_checks_is_requested(tmp_path: Path) -> None:
    with nifty_pipeline(tmp_path, contract_types=("FUT",), **WHOLE_WINDOW) as p:
        key = p.partition("NIFTY", AUGUST)
        defs = definitions(p)
        before = evaluate_automation_conditions(defs=defs, instance=p.instance)
        assert before.total_requested == 0  # nothing collected yet
        assert run(p, key, selection=[*ASSETS, *COLLECT_CHECKS]).success
        after = evaluate_automation_conditions(defs=defs, instance=p.instance, cursor=before.cursor)
        for table in CHAIN_TABLES:
            assert requested(after, table) == {key}, table
        assert after.get_num_requested(CONTINUOUS_FUTURES) == 1


def test_a_failed_blocking_check_keeps_the_research_assets_away(tmp_path: Path) -> None:
    with nifty_pipeline(
        tmp_path, contract_types=("FUT",), faults=spoil("ohlc"), **WHOLE_WINDOW
    ) as p:
        key = p.partition("NIFTY", AUGUST)
        defs = definitions(p)
        before = evaluate_automation_conditions(defs=defs, instance=p.instance)
        result = run(p, key, selection=EVERYTHING)
        # In the same run: the blocking check stops the chain tables before they start.
        assert check_verdicts(result)["ohlc_integrity"] is False
        assert "candles" in materialized(result)
        assert "chain_research" not in started_steps(result)
        # Later, by automation: the partition is not requested, the run's events say why.
        after = evaluate_automation_conditions(defs=defs, instance=p.instance, cursor=before.cursor)
        for table in CHAIN_TABLES:
            assert requested(after, table) == set(), table
        # continuous_futures may refresh, but reads nothing from the failed partition.
        refreshed = materialize([continuous_futures], instance=p.instance, resources=resources(p))
        assert refreshed.success
        (event,) = refreshed.get_asset_materialization_events()
        metadata = event.materialization.metadata
        assert metadata["partitions_left_out"].value == 1
        assert metadata["partitions_used"].value == 0
        assert p.query("SELECT count(*) FROM continuous_futures") == [(0,)]


def test_the_project_definitions_carry_the_research_layer() -> None:
    from dagster import DefaultSensorStatus

    from expirytrack_dagster.assets.research import AFTER_BLOCKING_CHECKS
    from expirytrack_dagster.definitions import build_definitions

    defs = build_definitions({})
    graph = defs.resolve_asset_graph()
    for table in CHAIN_TABLES:
        node = graph.get(table)
        assert node.partitions_def is not None
        assert node.automation_condition == AFTER_BLOCKING_CHECKS
    assert graph.get(CONTINUOUS_FUTURES).partitions_def is None
    sensor = defs.resolve_sensor_def("research_automation")
    assert sensor.default_status == DefaultSensorStatus.RUNNING
    checks = {key.name for key in graph.asset_check_keys}
    assert {"iv_within_bounds", "parity_at_atm", "max_pain_listed", "no_gaps_at_rolls"} <= checks
    assert "research" in defs.resources
