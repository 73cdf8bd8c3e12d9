"""The production profile (deploy/): the shipped instance on a real PostgreSQL server, one real
partition run end to end on it, and the compose, workspace, Dockerfile and Helm files consistent
with that instance.

Docker and Helm do not run here, so their files are checked for structure: the services exist,
the environment variable names are the ones dagster.yaml reads, the workspace points at the code
server's host and port, and the Helm values use keys of Dagster's chart.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import yaml
from dagster import AssetCheckKey, AssetKey, DagsterInstance, DagsterRunStatus
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.workspace.load import location_origins_from_yaml_paths
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from expirytrack_dagster.checks import ALL_CHECKS
from expirytrack_dagster.partitions import expiry_partitions
from expirytrack_dagster_tests.pipeline import (
    ASSETS,
    SMALL_RELIANCE,
    STOCK_TODAY,
    pipeline,
    sandbox_config,
    watch_underlying,
)

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
SHIPPED = DEPLOY / "dagster_home" / "dagster.yaml"
SINGLE_MACHINE = REPO / "data" / "dagster_home" / "dagster.yaml"
PG_URL_VARIABLE = "EXPIRYTRACK_DAGSTER_PG_URL"
EXPIRY = date(2025, 8, 28)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def production_home(root: Path, name: str = "dagster_home") -> Path:
    """A copy of deploy/dagster_home, as a user makes one and points DAGSTER_HOME at it."""
    home = root / name
    home.mkdir()
    shutil.copy(SHIPPED, home / "dagster.yaml")
    return home


@pytest.fixture
def production_dsn(postgres_dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The profile switched on: its variable names a fresh database on the test server, with
    the psycopg2 driver named as the README says (SQLAlchemy 2.1 maps a bare ``postgresql://``
    to psycopg 3, which is not installed). Returns the plain libpq URL, for psycopg2 itself."""
    monkeypatch.setenv(PG_URL_VARIABLE, dagster_url(postgres_dsn))
    return postgres_dsn


def dagster_url(libpq_url: str) -> str:
    scheme, rest = libpq_url.split("://", 1)
    assert scheme == "postgresql"
    return f"postgresql+psycopg2://{rest}"


@pytest.fixture
def production_instance(tmp_path: Path, production_dsn: str) -> Iterator[DagsterInstance]:
    with DagsterInstance.from_config(str(production_home(tmp_path))) as instance:
        yield instance


def postgres_tables(dsn: str) -> set[str]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema='public'")
        return {row[0] for row in cur.fetchall()}


# -- The instance --------------------------------------------------------------------------------


def test_the_shipped_instance_stores_runs_events_and_schedules_in_postgres(
    production_instance: DagsterInstance, production_dsn: str
) -> None:
    instance = production_instance
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
    # Building the instance created Dagster's tables in that database, not SQLite files.
    assert {"runs", "event_logs", "jobs", "concurrency_slots"} <= postgres_tables(production_dsn)
    assert instance.event_log_storage.supports_global_concurrency_limits


def test_the_run_queue_and_pools_hold_the_configured_limits(
    production_instance: DagsterInstance,
) -> None:
    instance = production_instance
    assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
    config = instance.get_concurrency_config()
    queue = config.run_queue_config
    assert queue is not None and queue.max_concurrent_runs == 4
    assert [dict(limit) for limit in queue.tag_concurrency_limits] == [
        {"key": "dagster/backfill", "limit": 3}
    ]
    # A backfill never takes every slot: live capture and sensor runs still start.
    assert queue.tag_concurrency_limits[0]["limit"] < queue.max_concurrent_runs
    assert config.pool_config.default_pool_limit == 1
    assert config.pool_config.pool_granularity.value == "op"
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0
    assert instance.managed_python_loggers == ["expirytrack_dagster"]


def test_the_profile_keeps_the_single_machine_limits_and_holds_no_password() -> None:
    production, single = load(SHIPPED), load(SINGLE_MACHINE)
    assert production["run_monitoring"] == single["run_monitoring"]
    assert production["concurrency"]["pools"] == single["concurrency"]["pools"]
    assert (
        production["concurrency"]["runs"]["max_concurrent_runs"]
        == single["concurrency"]["runs"]["max_concurrent_runs"]
    )
    assert production["python_logs"] == single["python_logs"]
    # The URL (and its password) is read from the environment when the instance loads.
    assert production["storage"] == {"postgres": {"postgres_url": {"env": PG_URL_VARIABLE}}}
    assert not [v for v in strings(production) if "://" in v]


def strings(node: Any) -> Iterator[str]:
    """Every string value in a parsed YAML document (comments are not values)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


# -- A partition end to end ----------------------------------------------------------------------


def test_a_partition_runs_end_to_end_and_another_instance_reads_it_back_from_postgres(
    tmp_path: Path, production_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch_underlying(tmp_path, monkeypatch)
    # The smallest real partition: RELIANCE's August 2025 future alone, one candle request.
    config = sandbox_config(
        seed=21,
        today=STOCK_TODAY,
        extra_profiles=(SMALL_RELIANCE,),
        max_span_days={"1minute": 3650},
    )
    with (
        pipeline(tmp_path, config, lookback_months=1, contract_types=["FUT"]) as local,
        DagsterInstance.from_config(str(production_home(tmp_path))) as instance,
    ):
        p = replace(local, instance=instance)
        key = p.partition("RELIANCE", EXPIRY)
        result = p.materialize(key, selection=[*ASSETS, *ALL_CHECKS])
        checks = {(e.asset_key, e.check_name): e for e in result.get_asset_check_evaluations()}
        stored = p.query("SELECT count(*) FROM candles WHERE partition_key = ?", [key])[0][0]

    assert result.success and checks and all(e.passed for e in checks.values())
    assert stored > 0

    # A second process on the same URL (the webserver, the daemon, another machine) sees it all.
    with DagsterInstance.from_config(str(production_home(tmp_path, "other_home"))) as other:
        run = other.get_run_by_id(result.run_id)
        assert run is not None and run.status == DagsterRunStatus.SUCCESS
        assert run.tags["dagster/partition"] == key
        assert other.get_dynamic_partitions(expiry_partitions.name) == [key]
        for asset in ("expiries", "contracts", "candles"):
            event = other.get_latest_materialization_event(AssetKey(asset))
            assert event is not None and event.run_id == result.run_id, asset
            assert event.dagster_event.partition == key, asset
        rows = other.get_latest_materialization_event(AssetKey("candles")).asset_materialization
        assert rows.metadata["dagster/row_count"].value == stored
        for asset_key, name in checks:
            history = other.event_log_storage.get_asset_check_execution_history(
                AssetCheckKey(asset_key, name), limit=5
            )
            assert [(r.run_id, r.partition, r.status) for r in history] == [
                (result.run_id, key, AssetCheckExecutionRecordStatus.SUCCEEDED)
            ], name

    with psycopg2.connect(production_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", [result.run_id])
        assert cur.fetchone()[0] > 0
    # Nothing went to SQLite beside the instance.
    assert not [*(tmp_path / "dagster_home").rglob("*.db")]


# -- compose, workspace, Dockerfile --------------------------------------------------------------


def compose() -> dict[str, Any]:
    return load(DEPLOY / "compose.yaml")


def command_option(command: list[str], *names: str) -> str:
    """The value after the first of ``names`` in an argv list."""
    for i, part in enumerate(command):
        if part in names:
            return command[i + 1]
    raise AssertionError(f"none of {names} in {command}")


def test_compose_runs_postgres_code_location_webserver_and_daemon_apart() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "code-location", "webserver", "daemon"}
    assert services["code-location"]["command"][:3] == ["dagster", "code-server", "start"]
    assert services["webserver"]["command"][0] == "dagster-webserver"
    assert services["daemon"]["command"][:2] == ["dagster-daemon", "run"]
    for name in ("code-location", "webserver", "daemon"):
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile", name
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy", name
    for name in ("webserver", "daemon"):
        assert services[name]["depends_on"]["code-location"]["condition"] == "service_healthy"


# Keys the Compose Specification allows (compose-spec/compose-spec, schema/compose-spec.json):
# the top level (plus `x-` extensions), a service, a healthcheck and a depends_on condition.
COMPOSE_TOP_LEVEL = {
    *("version", "name", "include", "services", "models", "networks", "volumes", "secrets"),
    "configs",
}
COMPOSE_SERVICE = {
    "develop",
    "deploy",
    "annotations",
    "attach",
    "build",
    "blkio_config",
    "cap_add",
    "cap_drop",
    "cgroup",
    "cgroup_parent",
    "command",
    "configs",
    "container_name",
    "cpu_count",
    "cpu_percent",
    "cpu_shares",
    "cpu_quota",
    "cpu_period",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpus",
    "cpuset",
    "credential_spec",
    "depends_on",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "entrypoint",
    "env_file",
    "label_file",
    "environment",
    "expose",
    "extends",
    "provider",
    "external_links",
    "extra_hosts",
    "gpus",
    "group_add",
    "healthcheck",
    "hostname",
    "image",
    "init",
    "ipc",
    "isolation",
    "labels",
    "links",
    "logging",
    "mac_address",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "network_mode",
    "models",
    "networks",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "ports",
    "post_start",
    "pre_stop",
    "privileged",
    "profiles",
    "pull_policy",
    "pull_refresh_after",
    "read_only",
    "restart",
    "runtime",
    "scale",
    "security_opt",
    "shm_size",
    "secrets",
    "sysctls",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "tmpfs",
    "tty",
    "ulimits",
    "use_api_socket",
    "user",
    "uts",
    "userns_mode",
    "volumes",
    "volumes_from",
    "working_dir",
}
COMPOSE_BUILD = {"context", "dockerfile", "args", "target", "tags", "labels", "platforms"}
COMPOSE_HEALTHCHECK = {
    *("disable", "interval", "retries", "test", "timeout", "start_period", "start_interval"),
}
COMPOSE_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def test_compose_uses_only_keys_of_the_compose_specification() -> None:
    document = compose()
    assert {k for k in document if not k.startswith("x-")} <= COMPOSE_TOP_LEVEL
    for name, service in document["services"].items():
        assert set(service) <= COMPOSE_SERVICE, name
        assert set(service.get("build", {})) <= COMPOSE_BUILD, name
        assert set(service.get("healthcheck", {})) <= COMPOSE_HEALTHCHECK, name
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in document["services"], name
            assert condition["condition"] in COMPOSE_CONDITIONS, name
        for value in service["environment"].values():
            assert isinstance(value, str), name  # a dict's values: strings, not nested maps
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in document["volumes"], name
        assert all(isinstance(part, str) for part in service.get("command", [])), name


def test_every_dagster_service_gets_the_variable_the_instance_reads_without_a_literal_password() -> (
    None
):
    services = compose()["services"]
    read = load(SHIPPED)["storage"]["postgres"]["postgres_url"]["env"]
    password = services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert re.fullmatch(r"\$\{[A-Z_]+:\?.+\}", password)  # from deploy/.env, required
    for name in ("code-location", "webserver", "daemon"):
        environment = services[name]["environment"]
        url = environment[read]
        assert url.startswith(f"postgresql+psycopg2://dagster:{password}@postgres:5432/"), name
        assert url.endswith("/" + services["postgres"]["environment"]["POSTGRES_DB"]), name
        assert environment["DAGSTER_HOME"] == "/opt/dagster/dagster_home", name
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "DAGSTER_HOME=/opt/dagster/dagster_home" in dockerfile
    assert "COPY deploy/dagster_home/dagster.yaml ${DAGSTER_HOME}/dagster.yaml" in dockerfile
    assert "COPY deploy/workspace.yaml /opt/dagster/workspace.yaml" in dockerfile
    assert 'pip install ".[${EXTRAS}]"' in dockerfile and "ARG EXTRAS=production" in dockerfile


def test_the_workspace_points_at_the_code_location_service_host_and_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = compose()["services"]
    code = services["code-location"]["command"]
    for name in ("webserver", "daemon"):
        command = services[name]["command"]
        assert command_option(command, "-w", "--workspace") == "/opt/dagster/workspace.yaml"
        # Dagster's own workspace loader, with the environment compose gives that service.
        for variable, value in services[name]["environment"].items():
            monkeypatch.setenv(variable, value)
        (origin,) = location_origins_from_yaml_paths([str(DEPLOY / "workspace.yaml")])
        assert origin.host == "code-location" and origin.host in services, name
        assert origin.port == int(command_option(code, "-p", "--port")), name
        assert origin.location_name == command_option(code, "--location-name"), name
    assert command_option(code, "-h", "--host") == "0.0.0.0"
    assert command_option(code, "-m", "--module-name") == "expirytrack_dagster.definitions"
    pyproject = (REPO / "pyproject.toml").read_text()
    assert f'code_location_name = "{origin.location_name}"' in pyproject


# -- Helm ----------------------------------------------------------------------------------------

# Keys of Dagster's chart (dagster/dagster), as its schema declares them: the top level from
# helm/dagster/schema/schema/charts/dagster/values.py (DagsterHelmValues) plus `concurrency`, and
# the sections this project sets from the subschema models of the same chart.
CHART_TOP_LEVEL = {
    "dagsterWebserver",
    "dagster-user-deployments",
    "postgresql",
    "generatePostgresqlPasswordSecret",
    "generateCeleryConfigSecret",
    "rabbitmq",
    "redis",
    "flower",
    "ingress",
    "imagePullSecrets",
    "computeLogManager",
    "scheduler",
    "runLauncher",
    "pythonLogs",
    "dagsterDaemon",
    "busybox",
    "migrate",
    "telemetry",
    "serviceAccount",
    "global",
    "retention",
    "additionalInstanceConfig",
    "concurrency",
}
CHART_USER_DEPLOYMENT = {
    "name",
    "image",
    "dagsterApiGrpcArgs",
    "codeServerArgs",
    "includeConfigInLaunchedRuns",
    "port",
    "env",
    "envConfigMaps",
    "envSecrets",
    "annotations",
    "nodeSelector",
    "affinity",
    "tolerations",
    "podSecurityContext",
    "securityContext",
    "resources",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "labels",
    "volumeMounts",
    "volumes",
    "schedulerName",
}
CHART_POSTGRESQL = {
    "image",
    "enabled",
    "postgresqlHost",
    "postgresqlUsername",
    "postgresqlPassword",
    "postgresqlDatabase",
    "postgresqlParams",
    "postgresqlScheme",
    "service",
}
CHART_QUEUED_RUN_COORDINATOR = {
    "maxConcurrentRuns",
    "tagConcurrencyLimits",
    "dequeueIntervalSeconds",
    "dequeueNumWorkers",
    "dequeueUseThreads",
    "blockOpConcurrencyLimitedRuns",
}
CHART_CONCURRENCY = {
    "enabled": None,
    "pools": {"defaultLimit", "granularity", "opGranularityRunBuffer"},
    "runs": {"maxConcurrentRuns", "tagConcurrencyLimits"},
}
CHART_RUN_MONITORING = {
    "enabled",
    "startTimeoutSeconds",
    "pollIntervalSeconds",
    "maxResumeRunAttempts",
}
"""The run-monitoring keys the chart's instance template renders into dagster.yaml."""


def helm_values() -> dict[str, Any]:
    return load(DEPLOY / "helm" / "values.yaml")


def test_helm_values_use_only_keys_of_dagsters_chart() -> None:
    values = helm_values()
    assert set(values) <= CHART_TOP_LEVEL
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert set(deployment) <= CHART_USER_DEPLOYMENT
    assert set(values["postgresql"]) <= CHART_POSTGRESQL
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "QueuedRunCoordinator" and coordinator["enabled"]
    assert set(coordinator["config"]["queuedRunCoordinator"]) <= CHART_QUEUED_RUN_COORDINATOR
    assert set(values["dagsterDaemon"]["runMonitoring"]) <= CHART_RUN_MONITORING
    for section, keys in values["concurrency"].items():
        assert section in CHART_CONCURRENCY
        if CHART_CONCURRENCY[section] is not None:
            assert set(keys) <= CHART_CONCURRENCY[section], section


def test_helm_values_repeat_the_instance_choices_and_name_secrets_not_passwords() -> None:
    values, instance = helm_values(), load(SHIPPED)
    runs, pools = values["concurrency"]["runs"], values["concurrency"]["pools"]
    assert runs["maxConcurrentRuns"] == instance["concurrency"]["runs"]["max_concurrent_runs"]
    assert runs["tagConcurrencyLimits"] == instance["concurrency"]["runs"]["tag_concurrency_limits"]
    assert pools["defaultLimit"] == instance["concurrency"]["pools"]["default_limit"]
    assert pools["granularity"] == instance["concurrency"]["pools"]["granularity"]
    # The chart refuses run limits in both places: they are only under `concurrency`.
    assert (
        "maxConcurrentRuns"
        not in values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    )
    assert (
        values["dagsterDaemon"]["runMonitoring"]["startTimeoutSeconds"]
        == (instance["run_monitoring"]["start_timeout_seconds"])
    )
    assert (
        values["pythonLogs"]["managedPythonLoggers"]
        == (instance["python_logs"]["managed_python_loggers"])
    )
    # The code location keeps its name; the image's module is the one the code server loads.
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["name"] == "expirytrack"
    assert deployment["codeServerArgs"] == ["-m", "expirytrack_dagster.definitions"]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    # Secrets by name: the Postgres password and the token come from Secrets, not values.
    assert values["postgresql"]["enabled"] is False
    assert values["postgresql"]["postgresqlPassword"] == ""
    assert values["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"]
    assert [s["name"] for s in deployment["envSecrets"]] == ["expirytrack-secrets"]
    assert "UPSTOX_ACCESS_TOKEN" not in {e["name"] for e in deployment["env"]}
