"""A run waiting for a concurrency-pool slot sleeps until its next claim check (Dagster 1.13 spins).

Every step that writes DuckDB claims the one ``duckdb_writer`` slot. A run whose step is waiting
for it should sleep between claim checks (Dagster retries a refused claim after 1 s, backing off to
15 s). In Dagster 1.13 ``InstanceConcurrencyContext.interval_to_next_pending_claim_check`` returns
``min([0, *remaining])``, which is never positive, so the executor's ``sleep_til_ready`` never
sleeps: the waiting run's process loops at full speed, one CPU core for as long as the other run
holds the slot (measured: 5.0 CPU-seconds in a 5-second wait). A Dagster maintainer found and
fixed the sign in dagster-io/dagster#20367 (2024); that pull request was closed without merging.

:func:`apply` replaces that one method with the intended one: the time until the earliest refused
claim may be retried, never negative. Nothing else changes: when to retry, the back-off and the
claims themselves are Dagster's. ``definitions.py`` applies it, so every process that runs this
project's jobs (``dagster dev``'s runs, ``expirytrack backfill``'s, the tests') has it.
"""

from __future__ import annotations

import time

from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext


def seconds_to_next_claim_check(context: InstanceConcurrencyContext) -> float:
    """How long the run may sleep before a refused claim is due to be tried again (0: now)."""
    if not context._pending_claims:
        return 0.0
    now = time.time()
    due = [ready_at - now for ready_at in context._pending_timeouts.values()]
    return max(0.0, min(due)) if due else 0.0


def apply() -> None:
    """Make waiting runs sleep between claim checks (idempotent)."""
    InstanceConcurrencyContext.interval_to_next_pending_claim_check = (  # type: ignore[method-assign]
        seconds_to_next_claim_check
    )
