"""Backfill selection: discover an underlying's expiries, then pick the never-collected ones."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from dagster import instance_for_test

from expirytrack_dagster.backfill import (
    describe_budget,
    discover,
    estimate_requests,
    foreign_partitions,
    remove_partitions,
    select_partitions,
)
from expirytrack_dagster.partitions import build_partition_key, expiry_partitions
from expirytrack_dagster_tests.pipeline import (
    RELIANCE_KEY,
    pipeline,
    sandbox_config,
    watch_underlying,
)


@pytest.fixture(autouse=True)
def watch_reliance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    watch_underlying(tmp_path, monkeypatch)


def test_missing_partitions_of_one_underlying(tmp_path: Path) -> None:
    with pipeline(
        tmp_path,
        sandbox_config(seed=21, today=date(2025, 10, 1)),
        lookback_months=1,
        contract_types=["FUT"],
    ) as p:
        keys = discover(p.instance, p.upstox(), "RELIANCE", timedelta(hours=1))
        listed = p.sandbox.market.expiries(RELIANCE_KEY)
        assert keys == [build_partition_key("RELIANCE", d) for d in listed]
        collected = build_partition_key("RELIANCE", date(2025, 8, 28))
        assert p.materialize(collected).success
        missing = select_partitions(p.instance, "RELIANCE", missing=True)
        assert missing == [k for k in keys if k != collected]
        recent = select_partitions(
            p.instance, "RELIANCE", start=date(2025, 8, 1), end=date(2025, 9, 30)
        )
        assert recent == [
            build_partition_key("RELIANCE", d) for d in listed if d >= date(2025, 8, 1)
        ]


def test_a_foreign_key_is_skipped_and_can_be_removed(tmp_path: Path) -> None:
    with instance_for_test(temp_dir=str(tmp_path)) as instance:
        ours = [build_partition_key("RELIANCE", date(2025, m, 28)) for m in (9, 8)]
        instance.add_dynamic_partitions(expiry_partitions.name, [*ours, "nifty-test"])
        assert select_partitions(instance, "RELIANCE") == sorted(ours)
        assert select_partitions(instance, "RELIANCE", missing=True) == sorted(ours)
        assert foreign_partitions(instance) == ["nifty-test"]
        remove_partitions(instance, foreign_partitions(instance))
        assert foreign_partitions(instance) == []
        assert sorted(instance.get_dynamic_partitions(expiry_partitions.name)) == sorted(ours)


def test_budget_estimate_in_words() -> None:
    requests = estimate_requests(["A", "B"], 200, 4)
    assert requests == 2 * (200 * 4 + 3)
    assert estimate_requests(["A", "B"], 200, 4, index_windows=4) == requests + 2 * 4
    assert describe_budget(requests, 2000) == "within one 30-minute window"
    assert describe_budget(10_000, 2000) == "about 2h 30m at 2000 requests / 30 min"
