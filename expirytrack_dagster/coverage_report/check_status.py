"""Each partition's check status: the latest result of every quality rule, and the worst of them.

The rules and their severities come from the rule registry (``quality.RULES``), the home below
both the asset checks and this report; the results come from the Dagster instance.
"""

from collections.abc import Mapping, Sequence

from dagster import AssetCheckKey, AssetKey, DagsterInstance

from expirytrack_dagster.quality import RULES

CHECK_KEYS: tuple[AssetCheckKey, ...] = tuple(
    AssetCheckKey(AssetKey(rule.asset), rule.name) for rule in RULES
)
"""The Dagster key of every rule's check (a rule's check is named for it, on the asset it judges)."""


def partition_check_status(statuses: Mapping[str, str]) -> tuple[str, str | None]:
    """A partition's overall check status from each rule's latest status, and the failed rules.

    Rule statuses are ``passed``, ``failed``, ``running`` or ``not_run`` (planned in a run that
    ended without a result). Overall, worst first: ``failed`` (a blocking, ERROR rule failed),
    ``running``, ``not_run``, ``warn`` (only WARN rules failed), ``passed``; ``not_checked``
    when no rule ever ran on the partition. Failed rules are listed in report order.
    """
    if not statuses:
        return "not_checked", None
    failed = [rule for rule in RULES if statuses.get(rule.name) == "failed"]
    listed = ", ".join(rule.name for rule in failed) or None
    if any(rule.blocking for rule in failed):
        return "failed", listed
    for state in ("running", "not_run"):
        if state in statuses.values():
            return state, listed
    return ("warn" if failed else "passed"), listed


def latest_check_statuses(
    instance: DagsterInstance, check_keys: Sequence[AssetCheckKey] = CHECK_KEYS
) -> dict[str, dict[str, str]]:
    """partition key -> rule -> latest status, from the instance's check history.

    Results recorded without a partition (from a multi-partition run) are left out: they cannot
    be placed. A result still planned is ``running`` while its run is, else ``not_run``.
    """
    run_finished: dict[str, bool] = {}
    statuses: dict[str, dict[str, str]] = {}
    for partition_key, check_name, status, planned_run_id in _latest_per_partition(
        instance, check_keys
    ):
        if status == "SUCCEEDED":
            state = "passed"
        elif status == "FAILED":
            state = "failed"
        else:
            if planned_run_id not in run_finished:
                run = instance.get_run_by_id(planned_run_id)
                run_finished[planned_run_id] = run is None or run.is_finished
            state = "not_run" if run_finished[planned_run_id] else "running"
        statuses.setdefault(partition_key, {})[check_name] = state
    return statuses


def _latest_per_partition(
    instance: DagsterInstance, check_keys: Sequence[AssetCheckKey]
) -> list[tuple[str, str, str, str]]:
    """(partition key, check name, ``SUCCEEDED``/``FAILED``/``PLANNED``…, planned run id), once
    per checked partition.

    The one private Dagster path in the project. Dagster 1.13's public instance API answers the
    latest check result per check only (``get_latest_asset_check_evaluation_record``), not per
    partition; the per-partition summary is a method of the event log storage, which is what the
    UI uses. Statuses are compared by their string value so that no private enum is imported.
    """
    infos = instance.event_log_storage.get_asset_check_partition_info(list(check_keys))
    return [
        (
            info.partition_key,
            info.check_key.name,
            info.latest_execution_status.value,
            info.latest_planned_run_id,
        )
        for info in infos
        if info.partition_key is not None
    ]
