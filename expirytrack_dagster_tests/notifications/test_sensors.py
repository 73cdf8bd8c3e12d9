"""The notification sensors against a real Dagster instance with real runs and a real receiver.

Tiny stand-in assets (a ``candles`` asset with one blocking and one warning check, and one that
fails) are materialised into an in-memory instance; the sensors are then evaluated the way the
daemon does, and the messages that reach a loopback webhook receiver are compared word for word.
"""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    Config,
    DagsterInstance,
    Definitions,
    EnvVar,
    Failure,
    MaterializeResult,
    asset,
    build_run_status_sensor_context,
    build_sensor_context,
    materialize,
)

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.notifications import sensors as notification_sensors_module
from expirytrack_dagster.notifications.sensors import notification_sensors
from expirytrack_dagster.notifications.settings import NotificationSettings, WebhookSettings
from expirytrack_dagster.partitions import expiry_partitions
from expirytrack_dagster.resources import UpstoxResource
from expirytrack_dagster.sandbox_resource import SandboxResource
from expirytrack_dagster.upstox.client import token_fingerprint
from expirytrack_dagster_tests.notifications.conftest import SECRETS, WEBHOOK_TOKEN

KEY = "NIFTY_2025-09-04"
RERUN = "`expirytrack backfill NIFTY --since 2025-09-04 --until 2025-09-04`"


class CandleRun(Config):
    fail_blocking: bool = False
    fail_warning: bool = False
    fail_with: str | None = None


@asset(
    name="candles",
    partitions_def=expiry_partitions,
    check_specs=[
        AssetCheckSpec(
            "fetch_outcomes", asset="candles", blocking=True, partitions_def=expiry_partitions
        ),
        AssetCheckSpec("near_money_coverage", asset="candles", partitions_def=expiry_partitions),
    ],
)
def candles(config: CandleRun) -> MaterializeResult:
    if config.fail_with:
        raise Failure(description=config.fail_with)
    return MaterializeResult(
        metadata={"contracts": 4, "contract_days_complete": 1200, "api_requests": 36},
        check_results=[
            AssetCheckResult(
                check_name="fetch_outcomes",
                passed=not config.fail_blocking,
                severity=AssetCheckSeverity.ERROR,
                metadata={"summary": f"fetch_outcomes FAILED (ERROR) on {KEY}: failed_days=3"}
                if config.fail_blocking
                else {},
            ),
            AssetCheckResult(
                check_name="near_money_coverage",
                passed=not config.fail_warning,
                severity=AssetCheckSeverity.WARN,
                description="near-money strikes missing on 2 days",
            ),
        ],
    )


@asset(name="coverage_report")
def broken() -> None:
    raise RuntimeError("disk full while writing the report")


DEFS = Definitions(assets=[candles, broken])


@pytest.fixture
def instance(tmp_path):
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(expiry_partitions.name, [KEY])
        yield instance


def notifying_sensors(receiver, upstox: UpstoxResource) -> dict:
    settings = NotificationSettings(
        ui_url="http://localhost:3000",
        webhooks=[
            WebhookSettings(
                format="slack", url=f"{receiver.url}/hook/{{token}}", token_env="ET_SLACK_TOKEN"
            )
        ],
    )
    return {sensor.name: sensor for sensor in notification_sensors(settings, upstox)}


@pytest.fixture
def sensors(receiver, monkeypatch, tmp_path):
    monkeypatch.setenv("ET_SLACK_TOKEN", WEBHOOK_TOKEN)
    return notifying_sensors(receiver, UpstoxResource(credentials_dir=str(tmp_path / "creds")))


def texts(receiver) -> list[str]:
    for path, _ in receiver.posts:
        assert path == f"/hook/{WEBHOOK_TOKEN}"
    found = [body["text"] for _, body in receiver.posts]
    for text in found:
        for secret in SECRETS:
            assert secret not in text
    return found


def collect(instance, **config):
    return materialize(
        [candles],
        instance=instance,
        partition_key=KEY,
        run_config={"ops": {"candles": {"config": config}}},
        raise_on_error=False,
    )


def run_status_tick(sensor, instance, result, *, failure: bool):
    event = result.get_run_failure_event() if failure else result.get_run_success_event()
    context = build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
    )
    return sensor(context.for_run_failure() if failure else context)


def test_a_failed_run_names_the_step_error_and_the_rerun(instance, sensors, receiver) -> None:
    result = collect(instance, fail_with="NIFTY_2025-09-04: Upstox unavailable for 10 minutes")
    assert not result.success

    run_status_tick(sensors["notify_run_failure"], instance, result, failure=True)

    run_id = result.run_id
    assert texts(receiver) == [
        f"[ExpiryTrack] Run failed: {KEY}\n\n"
        f"What happened: Run {run_id[:8]} of job __ephemeral_asset_job__ for {KEY} failed. "
        "Failed steps: candles: NIFTY_2025-09-04: Upstox unavailable for 10 minutes\n"
        f"Partition: {KEY}\n"
        "Next step: Read the run's log in the Dagster UI, fix the cause, then collect it again: "
        f"{RERUN}.\n"
        f"Dagster UI: http://localhost:3000/runs/{run_id}"
    ]


def test_a_run_without_partition_names_the_user_error(instance, sensors, receiver) -> None:
    result = materialize([broken], instance=instance, raise_on_error=False)

    run_status_tick(sensors["notify_run_failure"], instance, result, failure=True)

    (text,) = texts(receiver)
    assert text.splitlines()[:6] == [
        "[ExpiryTrack] Run failed",
        "",
        f"What happened: Run {result.run_id[:8]} of job __ephemeral_asset_job__ failed. "
        "Failed steps: coverage_report: RuntimeError: disk full while writing the report",
        "Partition: none",
        "Next step: Read the run's log in the Dagster UI, fix the cause, then collect it again: "
        "re-execute the run from the Dagster UI.",
        f"Dagster UI: http://localhost:3000/runs/{result.run_id}",
    ]


def test_a_dead_token_in_a_run_says_log_in(instance, sensors, receiver) -> None:
    reason = "the Upstox token abc expired — run `expirytrack login` (or set UPSTOX_ACCESS_TOKEN)"
    result = collect(instance, fail_with=reason)

    run_status_tick(sensors["notify_run_failure"], instance, result, failure=True)

    (text,) = texts(receiver)
    assert (
        "Next step: Log in again: run `expirytrack login` (or set UPSTOX_ACCESS_TOKEN to a fresh "
        f"token); then collect it again: {RERUN}.\n"
    ) in text


def test_a_collected_partition_carries_its_verdict(instance, sensors, receiver) -> None:
    clean = collect(instance)
    warned = collect(instance, fail_warning=True)
    sensor = sensors["notify_partition_collected"]

    run_status_tick(sensor, instance, clean, failure=False)
    run_status_tick(sensor, instance, warned, failure=False)

    figures = "contracts=4, contract_days_complete=1,200, api_requests=36"
    assert texts(receiver) == [
        f"[ExpiryTrack] Partition collected: {KEY}, all 2 checks passed\n\n"
        f"What happened: Run {clean.run_id[:8]} collected {KEY} ({figures}). "
        "Verdict: all 2 checks passed.\n"
        f"Partition: {KEY}\n"
        "Next step: Nothing to do: the partition is ready to query.\n"
        f"Dagster UI: http://localhost:3000/runs/{clean.run_id}",
        f"[ExpiryTrack] Partition collected: {KEY}, 1 of 2 checks failed\n\n"
        f"What happened: Run {warned.run_id[:8]} collected {KEY} ({figures}). "
        "Verdict: 1 of 2 checks failed. "
        "Failed: near_money_coverage (WARN): near-money strikes missing on 2 days\n"
        f"Partition: {KEY}\n"
        "Next step: Nothing blocks this partition (warnings only); read the failed checks in "
        "the Dagster UI (asset candles, Checks tab) if those gaps matter to your backtest.\n"
        f"Dagster UI: http://localhost:3000/runs/{warned.run_id}",
    ]


def test_a_run_that_collected_nothing_is_not_a_collection(instance, sensors, receiver) -> None:
    @asset(name="expiries", partitions_def=expiry_partitions)
    def expiries() -> None:
        return None

    result = materialize([expiries], instance=instance, partition_key=KEY)

    run_status_tick(sensors["notify_partition_collected"], instance, result, failure=False)

    assert receiver.posts == []


def test_a_blocking_check_failure_is_sent_once(instance, sensors, receiver) -> None:
    sensor = sensors["notify_blocking_check_failed"]
    collect(instance, fail_blocking=True)  # before the sensor started: history, not news
    context = build_sensor_context(instance=instance, definitions=DEFS)
    sensor(context)
    assert receiver.posts == []

    failed = collect(instance, fail_blocking=True, fail_warning=True)
    assert not failed.success  # a failed blocking check fails the run
    sensor(context)
    sensor(context)  # the cursor moved on: nothing twice

    assert texts(receiver) == [
        f"[ExpiryTrack] Blocking check failed: fetch_outcomes on {KEY}\n\n"
        f"What happened: 1 blocking check failed on {KEY} in run {failed.run_id[:8]}: "
        f"fetch_outcomes (blocking): fetch_outcomes FAILED (ERROR) on {KEY}: failed_days=3. "
        "Assets downstream of the checked one were not updated for this partition.\n"
        f"Partition: {KEY}\n"
        "Next step: Read the checks' metadata in the Dagster UI (asset candles, Checks tab: "
        f"worst contracts and sample rows); once the cause is fixed, collect it again: {RERUN}.\n"
        f"Dagster UI: http://localhost:3000/runs/{failed.run_id}"
    ]


def test_a_run_failed_by_a_blocking_check_says_read_the_check(instance, sensors, receiver):
    result = collect(instance, fail_blocking=True)

    run_status_tick(sensors["notify_run_failure"], instance, result, failure=True)

    assert texts(receiver) == [
        f"[ExpiryTrack] Run failed: {KEY}\n\n"
        f"What happened: Run {result.run_id[:8]} of job __ephemeral_asset_job__ for {KEY} "
        "failed. Failed steps: candles: DagsterAssetCheckFailedError: 1 blocking asset check "
        "failed with ERROR severity: Blocking checks failed: fetch_outcomes (blocking): "
        f"fetch_outcomes FAILED (ERROR) on {KEY}: failed_days=3\n"
        f"Partition: {KEY}\n"
        "Next step: Read the failed checks' metadata in the Dagster UI (asset candles, Checks "
        f"tab, this partition); once the cause is fixed, collect it again: {RERUN}.\n"
        f"Dagster UI: http://localhost:3000/runs/{result.run_id}"
    ]


def test_check_results_are_read_past_one_page(instance, sensors, receiver, monkeypatch):
    monkeypatch.setattr(notification_sensors_module, "CHECK_HISTORY_PAGE", 1)
    sensor = sensors["notify_blocking_check_failed"]
    context = build_sensor_context(instance=instance, definitions=DEFS)
    sensor(context)
    first = collect(instance, fail_blocking=True)
    second = collect(instance, fail_blocking=True)

    sensor(context)

    assert [text.splitlines()[2].split(" in run ")[1][:8] for text in texts(receiver)] == [
        first.run_id[:8],
        second.run_id[:8],
    ]


def test_new_partitions_are_announced_once(instance, sensors, receiver) -> None:
    sensor = sensors["notify_new_partition"]
    context = build_sensor_context(instance=instance, definitions=DEFS)
    sensor(context)  # the partitions that already exist are not news
    assert receiver.posts == []

    instance.add_dynamic_partitions(expiry_partitions.name, ["NIFTY_2025-09-11"])
    sensor(context)
    instance.add_dynamic_partitions(
        expiry_partitions.name, ["BANKNIFTY_2025-09-30", "NIFTY_2025-09-18"]
    )
    ran = materialize(
        [candles],
        instance=instance,
        partition_key="NIFTY_2025-09-18",
        run_config={"ops": {"candles": {"config": {}}}},
    )
    sensor(context)
    sensor(context)

    assert texts(receiver) == [
        "[ExpiryTrack] New expiry partition: NIFTY_2025-09-11\n\n"
        "What happened: The expiry NIFTY_2025-09-11 became a partition.\n"
        "Partition: NIFTY_2025-09-11\n"
        "Next step: Collect it when you choose: "
        "`expirytrack backfill NIFTY --since 2025-09-11 --until 2025-09-11`.",
        "[ExpiryTrack] 2 new expiry partitions\n\n"
        "What happened: 2 expiries became partitions. A collection run is already requested "
        f"for NIFTY_2025-09-18 (run {ran.run_id[:8]}).\n"
        "Partition: BANKNIFTY_2025-09-30, NIFTY_2025-09-18\n"
        "Next step: Collect it when you choose: "
        "`expirytrack backfill BANKNIFTY --since 2025-09-30 --until 2025-09-30`.",
    ]


def jwt_expiring_at(moment: datetime) -> str:
    """A JWT-shaped token whose ``exp`` is ``moment`` (only the claim is read, never trusted)."""

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'exp': int(moment.timestamp())})}.signature-secret"


def test_the_token_warning_is_sent_once_per_deadline(instance, receiver, tmp_path, monkeypatch):
    deadline = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    token = jwt_expiring_at(deadline)
    monkeypatch.setenv("ET_SLACK_TOKEN", WEBHOOK_TOKEN)
    monkeypatch.setenv("UPSTOX_ACCESS_TOKEN", token)  # read by the sensor, as in the daemon
    upstox = UpstoxResource(
        access_token=EnvVar("UPSTOX_ACCESS_TOKEN"), credentials_dir=str(tmp_path / "creds")
    )
    sensor = notifying_sensors(receiver, upstox)["notify_token_deadline"]
    context = build_sensor_context(instance=instance)

    sensor(context)
    sensor(context)

    (text,) = texts(receiver)
    assert token not in text
    local = deadline.astimezone(IST)
    lines = text.splitlines()
    assert lines[0] in {
        "[ExpiryTrack] Upstox token dies in 1h 59m",
        "[ExpiryTrack] Upstox token dies in 2h 00m",
    }
    assert lines[2].startswith(
        f"What happened: The Upstox token {token_fingerprint(token)} from the environment "
        f"variable UPSTOX_ACCESS_TOKEN expires {local:%H:%M} IST "
    )
    assert lines[2].endswith(
        "After that no run can collect and the new-expiry sensor skips its ticks."
    )
    assert lines[3:] == [
        "Partition: none",
        "Next step: Before then, run `expirytrack login` (or set UPSTOX_ACCESS_TOKEN to a fresh "
        "token).",
    ]


def test_a_dead_token_is_reported_once_a_day(instance, sensors, receiver) -> None:
    sensor = sensors["notify_token_deadline"]  # no token configured or stored
    context = build_sensor_context(instance=instance)

    sensor(context)
    sensor(context)
    today = datetime.now(IST).date().isoformat()

    assert json.loads(context.cursor) == {"dead_day": today}
    assert texts(receiver) == [
        "[ExpiryTrack] Upstox token is dead: collection is stopped\n\n"
        "What happened: No Upstox access token is configured or stored. No run can collect and "
        "the new-expiry sensor skips its ticks until a new token is in place.\n"
        "Partition: none\n"
        "Next step: Run `expirytrack login` (or set UPSTOX_ACCESS_TOKEN to a fresh token)."
    ]


def test_a_sandbox_source_has_no_token_to_watch(instance, receiver, monkeypatch) -> None:
    monkeypatch.setenv("ET_SLACK_TOKEN", WEBHOOK_TOKEN)
    sensor = notifying_sensors(receiver, SandboxResource())["notify_token_deadline"]

    result = sensor(build_sensor_context(instance=instance))

    assert result.skip_message == "the data source is the sandbox: no Upstox token to watch"
    assert receiver.posts == []


def test_no_channel_means_no_sensors() -> None:
    assert notification_sensors(NotificationSettings(), UpstoxResource()) == []
