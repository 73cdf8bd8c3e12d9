"""The new-expiry sensor's decisions (pure), tested without Dagster or HTTP."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.expiry_listing import is_final
from expirytrack_dagster.sensors import plan_new_expiries

HOUR = timedelta(hours=1)


def test_final_only_after_close_plus_delay() -> None:
    expiry = date(2025, 8, 28)
    assert not is_final(expiry, datetime(2025, 8, 28, 15, 29, tzinfo=IST), HOUR)
    assert not is_final(expiry, datetime(2025, 8, 28, 16, 29, tzinfo=IST), HOUR)
    assert is_final(expiry, datetime(2025, 8, 28, 16, 30, tzinfo=IST), HOUR)


def test_first_sight_adds_history_without_runs() -> None:
    listed = {"NIFTY": [date(2025, 8, 21), date(2025, 8, 28)]}
    now = datetime(2025, 9, 1, 10, tzinfo=IST)
    plan = plan_new_expiries(listed, {}, set(), now, HOUR)
    assert plan.add == ["NIFTY_2025-08-21", "NIFTY_2025-08-28"]
    assert plan.run == []
    assert plan.cursor == {"NIFTY": "2025-08-28"}


def test_new_final_expiry_is_added_and_run_once() -> None:
    listed = {"NIFTY": [date(2025, 8, 28), date(2025, 9, 2), date(2025, 9, 9)]}
    cursor = {"NIFTY": "2025-08-28"}
    existing = {"NIFTY_2025-08-28"}
    # 9 Sept is listed but its session has not closed yet: it must wait, not be dropped.
    now = datetime(2025, 9, 9, 12, tzinfo=IST)
    plan = plan_new_expiries(listed, cursor, existing, now, HOUR)
    assert plan.add == ["NIFTY_2025-09-02"] and plan.run == ["NIFTY_2025-09-02"]
    assert plan.cursor == {"NIFTY": "2025-09-02"}
    later = plan_new_expiries(listed, plan.cursor, existing | set(plan.add), now + 6 * HOUR, HOUR)
    assert later.add == ["NIFTY_2025-09-09"] and later.run == ["NIFTY_2025-09-09"]
    again = plan_new_expiries(
        listed,
        later.cursor,
        existing | {"NIFTY_2025-09-02", "NIFTY_2025-09-09"},
        now + 7 * HOUR,
        HOUR,
    )
    assert again.add == [] and again.run == [] and again.cursor == later.cursor


def test_cursor_never_moves_backwards() -> None:
    # Upstox drops old expiries from its list; the cursor must not regress with it.
    plan = plan_new_expiries(
        {"NIFTY": [date(2025, 8, 28)]},
        {"NIFTY": "2025-09-02"},
        {"NIFTY_2025-08-28"},
        datetime(2025, 9, 10, tzinfo=IST),
        HOUR,
    )
    assert plan.cursor == {"NIFTY": "2025-09-02"} and plan.run == []


def test_sensor_against_the_sandbox_adds_new_expiries_and_runs_each_once(tmp_path) -> None:
    from dagster import SensorResult, build_sensor_context

    from expirytrack_dagster.instruments import watched_underlyings
    from expirytrack_dagster.partitions import build_partition_key, expiry_partitions
    from expirytrack_dagster.sensors import new_expiry_sensor
    from expirytrack_dagster_tests.pipeline import pipeline, sandbox_config

    with pipeline(tmp_path, sandbox_config(seed=21, today=date(2025, 9, 1))) as p:
        resources = {"upstox": p.upstox(), "collection": p.collection}

        def tick(cursor: str | None) -> SensorResult:
            with build_sensor_context(
                instance=p.instance, cursor=cursor, resources=resources
            ) as context:
                result = new_expiry_sensor(context)
            for request in getattr(result, "dynamic_partitions_requests", None) or []:
                p.instance.add_dynamic_partitions(
                    expiry_partitions.name, list(request.partition_keys)
                )
            return result

        first = tick(None)
        history = {
            build_partition_key(u.symbol, d)
            for u in watched_underlyings({})
            for d in p.sandbox.market.expiries(u.instrument_key)
        }
        assert set(p.instance.get_dynamic_partitions(expiry_partitions.name)) == history
        assert first.run_requests == []  # history becomes partitions, not a flood of runs

        p.sandbox.set_today(date(2025, 9, 10))
        second = tick(first.cursor)
        new = {
            build_partition_key(u.symbol, d)
            for u in watched_underlyings({})
            for d in p.sandbox.market.expiries(u.instrument_key)
            if date(2025, 9, 1) < d <= date(2025, 9, 10)
        }
        assert new, "the sandbox calendar should have expiries in the first days of September"
        assert {r.partition_key for r in second.run_requests} == new
        assert all(r.run_key == r.partition_key for r in second.run_requests)
        assert set(p.instance.get_dynamic_partitions(expiry_partitions.name)) == history | new

        third = tick(second.cursor)
        assert not getattr(third, "run_requests", None)


def _exhaust_ledger(upstox, used: int) -> Path:
    """Record ``used`` grants ten minutes ago in the ledger the sensor's client will use.

    Written through a second limiter on the same file whose limits are out of reach and whose
    clock stands still, as a backfill in another process would have left it.
    """
    import time

    from expirytrack_dagster.upstox.client import token_fingerprint
    from expirytrack_dagster.upstox.limiter import RateLimits, SharedRateLimiter

    class StillClock:
        def __init__(self, t: float) -> None:
            self.t = t

        def now(self) -> float:
            return self.t

        def sleep(self, seconds: float) -> None:
            self.t += seconds

    path = (
        Path(upstox.state_dir) / "ratelimit" / f"{token_fingerprint(upstox.sandbox_token)}.sqlite"
    )
    huge = RateLimits(per_second=10**9, per_minute=10**9, per_30_minutes=10**9)
    filler = SharedRateLimiter(path, huge, StillClock(time.time() - 600))
    for _ in range(used):
        assert filler.try_acquire() == 0.0
    filler.close()
    return path


def test_sensor_skips_at_once_when_a_backfill_has_taken_the_budget(tmp_path) -> None:
    import time

    from dagster import SkipReason, build_sensor_context

    from expirytrack_dagster.instruments import watched_underlyings
    from expirytrack_dagster.sensors import SENSOR_API_DEADLINE_S, new_expiry_sensor
    from expirytrack_dagster_tests.pipeline import pipeline, sandbox_config

    with pipeline(tmp_path, sandbox_config(seed=21, today=date(2025, 9, 1))) as p:
        # Upstox's real limits; 1,995 of the 2,000 per 30 minutes spent, seven underlyings.
        upstox = p.upstox(per_second=50, per_minute=500, per_30_minutes=2000)
        ledger = _exhaust_ledger(upstox, 1995)
        assert len(watched_underlyings()) == 7
        started = time.monotonic()
        with build_sensor_context(
            instance=p.instance,
            cursor='{"NIFTY": "2025-08-28"}',
            resources={"upstox": upstox, "collection": p.collection},
        ) as context:
            result = new_expiry_sensor(context)
        elapsed = time.monotonic() - started
        served = p.sandbox.stats()["total"]

    assert isinstance(result, SkipReason), result
    message = result.skip_message
    assert "1995 of 2000 requests per 30 minutes used" in message
    assert "room for 7 more at" in message and "UTC (in 2" in message  # ~20 minutes from now
    assert "next tick tries again" in message
    assert served == 0  # not one request was sent
    import sqlite3

    with sqlite3.connect(ledger) as db:
        assert db.execute("SELECT count(*) FROM grants").fetchone() == (1995,)
    # It returned instead of waiting ~20 minutes for the window (generous: a loaded machine).
    assert elapsed < SENSOR_API_DEADLINE_S


def test_sensor_gives_up_within_its_tick_when_upstox_is_slow(tmp_path, monkeypatch) -> None:
    from dagster import SkipReason, build_sensor_context

    from expirytrack_dagster import sensors
    from expirytrack_dagster.sandbox import FaultConfig
    from expirytrack_dagster_tests.pipeline import pipeline, sandbox_config

    monkeypatch.setattr(sensors, "SENSOR_API_DEADLINE_S", 0.5)
    with pipeline(tmp_path, sandbox_config(seed=21, today=date(2025, 9, 1))) as p:
        p.sandbox.set_faults(FaultConfig(slow=1.0, slow_seconds=5.0))
        with build_sensor_context(
            instance=p.instance, cursor=None, resources=p.resources()
        ) as context:
            result = sensors.new_expiry_sensor(context)
    assert isinstance(result, SkipReason), result
    assert "did not arrive within 0.5 s" in result.skip_message
