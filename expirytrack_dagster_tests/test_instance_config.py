"""The shipped instance configuration (data/dagster_home/dagster.yaml) loads and recovers by itself."""

from __future__ import annotations

from pathlib import Path

import yaml
from dagster import DagsterInstance, instance_for_test

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "data" / "dagster_home" / "dagster.yaml"


def shipped_config() -> dict:
    return yaml.safe_load(SHIPPED.read_text())


def test_shipped_yaml_turns_run_monitoring_on_and_frees_slots_of_ended_runs() -> None:
    with instance_for_test(overrides=shipped_config()) as instance:
        assert instance.run_monitoring_enabled
        settings = instance.run_monitoring_settings
        assert 0 < settings["free_slots_after_run_end_seconds"] <= 300
        assert instance.run_monitoring_start_timeout_seconds > 0
        assert instance.run_monitoring_cancel_timeout_seconds > 0
        # The local run launcher cannot tell whether a run's process is alive: besides the
        # orphaned-run sensor (test_orphaned_runs), the maximum runtime is the backstop.
        assert instance.run_monitoring_max_runtime_seconds >= 3600
        assert instance.event_log_storage.supports_global_concurrency_limits


def test_shipped_yaml_keeps_one_duckdb_writer_and_logs_the_project_at_info() -> None:
    with instance_for_test(overrides=shipped_config()) as instance:
        pools = instance.get_settings("concurrency")["pools"]
        assert pools["default_limit"] == 1
        assert instance.managed_python_loggers == ["expirytrack_dagster"]
        assert instance.python_log_level == "INFO"


def test_the_file_itself_is_a_valid_dagster_home(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(SHIPPED.read_text())
    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0


def test_a_wait_for_rate_budget_reaches_the_run_log_at_info(tmp_path: Path) -> None:
    import logging

    from dagster import asset, materialize

    from expirytrack_dagster.upstox.limiter import RateLimits, SharedRateLimiter

    class StepClock:
        t = 1_000.0

        def now(self) -> float:
            return self.t

        def sleep(self, seconds: float) -> None:
            self.t += seconds

    @asset
    def spends_budget() -> None:
        limits = RateLimits(per_second=5, per_minute=5, per_30_minutes=1)
        limiter = SharedRateLimiter(tmp_path / "ledger.sqlite", limits, StepClock())
        limiter.acquire()
        limiter.acquire()  # waits ~30 minutes of the step clock

    with instance_for_test(overrides=shipped_config()) as instance:
        result = materialize([spends_budget], instance=instance)
        lines = [
            entry
            for entry in instance.all_logs(result.run_id)
            if "Waiting for Upstox rate budget" in (entry.message or "")
        ]
    assert len(lines) == 1 and lines[0].level == logging.INFO
    assert "1 of 1 requests per 30 minutes used" in lines[0].message
