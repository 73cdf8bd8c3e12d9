"""Candles collected per 30 minutes with 1, 2 and 3 Upstox accounts (goal: linear within 10 %).

A backfill as Dagster's run queue drives it: ``--runs`` run slots (``max_concurrent_runs``), each a
process that materialises partitions one run after another — the real ``expiries``, ``contracts``
and ``candles`` assets, through the real ``SandboxResource`` with ``accounts``, every run choosing
its account through the pool (Dagster run records in one shared instance, the rate ledgers) —
against one sandbox served over TLS/HTTP/2 that accepts 1, 2 or 3 tokens, each with its own
windows. The slots stay the same for every account count; only the accounts change.

Time is compressed with the sandbox's time scale (``--time-scale 0.1``: a 30-minute window lasts
180 s). Counted: candles in landing files written within ``--windows`` 30-minute windows of the
start, divided by the windows. The request budget per window is ``--budget`` (Upstox's is 2000;
the default 200, with 50/minute and 5/second, keeps the machine's CPU — two shared cores — from
being what limits the collection at this time scale: the figure is budget-bound, as a real
backfill is, and scales to Upstox's budget by ``2000 / budget``). Medians over ``--repeat``.

    python -m benchmarks.bench_accounts [--repeat 3] [--time-scale 0.1] [--windows 1]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from expirytrack_dagster.partitions import build_partition_key, expiry_partitions
from expirytrack_dagster.sandbox import DEFAULT_PROFILES, SandboxConfig, run_sandbox

NIFTY = "NSE_INDEX|Nifty 50"
TODAY = date(2025, 10, 1)
SMALL_NIFTY = replace(
    next(p for p in DEFAULT_PROFILES if p.symbol == "NIFTY"), max_strikes=5, weekly_max_strikes=5
)
"""NIFTY's calendar with fewer strikes: 54 contracts a weekly partition."""
NAMES = ("default", "b", "c")
NO_COMPUTE_LOGS = {
    "compute_logs": {
        "module": "dagster._core.storage.noop_compute_log_manager",
        "class": "NoOpComputeLogManager",
    }
}
"""Runs' stdout/stderr capture off: it starts a ``tail`` per step, CPU the figure must not pay."""
TOKENS = {name: f"bench-accounts-token-{name}" for name in NAMES}


def _slot(
    slot: int,
    root: str,
    base_url: str,
    ca: str,
    limits: dict[str, Any],
    todo: Any,
    out: Any,
    go: Any,
) -> None:
    """One run slot: materialise queued partitions, one run at a time, until told to stop."""
    from dagster import DagsterInstance, materialize

    from expirytrack_dagster.assets import candles, contracts, expiries
    from expirytrack_dagster.sandbox_resource import SandboxResource
    from expirytrack_dagster.settings import CollectionSettings
    from expirytrack_dagster.storage.io_manager import ExpiryTrackIOManager

    home = Path(root)
    database = str(home / f"slot{slot}.duckdb")  # DuckDB: one writer per file, one file per slot
    accounts = [{"name": name} for name in NAMES[1 : limits.pop("accounts")]]
    resources = {
        "upstox": SandboxResource(
            sandbox_url=base_url,
            sandbox_token=TOKENS["default"],
            ca_cert_path=ca,
            state_dir=str(home / "state"),
            accounts=accounts,
            **limits,
        ),
        "collection": CollectionSettings(
            database=database,
            landing_dir=str(home / "landing"),
            lookback_months=1,
            compact_landing=False,
            # One contract at a time per run: at the deadline at most one contract per slot is
            # half-asked (its landing file not yet written), so the count misses little.
            max_in_flight=1,
            underlyings={"NIFTY": NIFTY},
        ),
        "io_manager": ExpiryTrackIOManager(database=database, schema="main"),
    }
    instance = DagsterInstance.local_temp(tempdir=str(home / "dagster"), overrides=NO_COMPUTE_LOGS)
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    out.put("ready")
    go.wait()
    while (key := todo.get()) is not None:
        result = materialize(
            [expiries, contracts, candles],
            partition_key=key,
            instance=instance,
            resources=resources,
            run_config=quiet,
            raise_on_error=False,
        )
        run = instance.get_run_by_id(result.run_id)
        # Without ``accounts`` (1 account) runs are not tagged: they use 'default'.
        out.put((key, result.success, run.tags.get("expirytrack/upstox_account", "default")))


def _landed_candles(landing: Path, until: float) -> int:
    """Candles in landing files written by ``until`` (wall clock)."""
    return sum(
        pq.read_metadata(path).num_rows
        for path in landing.rglob("*.parquet")
        if path.stat().st_mtime <= until
    )


def measure(accounts: int, runs: int, scale: float, windows: int, budget: int) -> dict[str, Any]:
    """One timed backfill with ``accounts`` accounts and ``runs`` run slots."""
    config = SandboxConfig(
        today=TODAY,
        extra_profiles=(SMALL_NIFTY,),
        per_second=budget // 40,
        per_minute=budget // 4,
        per_30_minutes=budget,
        time_scale=scale,
        access_token=TOKENS["default"],
        extra_tokens=tuple(TOKENS[n] for n in NAMES[1:accounts]),
    )
    limits = {
        "per_second": budget // 40,
        "per_minute": budget // 4,
        "per_30_minutes": budget,
        "time_scale": scale,
        "accounts": accounts,
    }
    window_s = 1800 * scale
    with run_sandbox(config) as sb, tempfile.TemporaryDirectory() as tmp:
        from dagster import DagsterInstance

        keys = [
            build_partition_key("NIFTY", expiry) for expiry in reversed(sb.market.expiries(NIFTY))
        ]
        (Path(tmp) / "dagster").mkdir()
        instance = DagsterInstance.local_temp(
            tempdir=str(Path(tmp) / "dagster"), overrides=NO_COMPUTE_LOGS
        )
        instance.add_dynamic_partitions(expiry_partitions.name, keys)
        env = {f"UPSTOX_ACCESS_TOKEN_{n.upper()}": TOKENS[n] for n in NAMES[1:]}
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)  # the slots inherit the accounts' token variables
        ctx = mp.get_context("spawn")
        todo, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
        for key in keys:
            todo.put(key)
        slots = [
            ctx.Process(
                target=_slot,
                args=(i, tmp, sb.base_url, str(sb.ca_cert_path), dict(limits), todo, out, go),
            )
            for i in range(runs)
        ]
        for slot in slots:
            slot.start()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name)
            else:
                os.environ[name] = value
        for _ in slots:  # imports and instance done: the clock starts with the first runs
            assert out.get(timeout=300) == "ready"
        started = time.time()
        go.set()
        deadline = started + windows * window_s
        time.sleep(max(0.0, deadline - time.time()))
        candles = _landed_candles(Path(tmp) / "landing", deadline)
        for slot in slots:  # SIGKILL: Dagster defers SIGTERM inside a run until the run ends
            slot.kill()
            slot.join()
        done = []
        while not out.empty():
            done.append(out.get())
        stats = sb.stats()
    used = Counter(account for _, ok, account in done if ok)
    return {
        "candles_per_window": candles / windows,
        "server_429s": stats["rate_limited"],
        "runs_done": len(done),
        "runs_failed": sum(1 for _, ok, _ in done if not ok),
        "runs_by_account": dict(sorted(used.items())),
        "requests_by_token": sorted(s["ok"] for s in stats["by_token"].values()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--time-scale", type=float, default=0.1)
    parser.add_argument("--windows", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3, help="run slots (max_concurrent_runs)")
    parser.add_argument("--budget", type=int, default=200, help="requests per 30-minute window")
    args = parser.parse_args(argv)
    print(
        f"candles per 30-minute window: NIFTY weeklies (54 contracts, 1 month, 1-minute), "
        f"{args.runs} run slots, budget {args.budget}/30 min per account ({args.budget // 4}/min, "
        f"{args.budget // 40}/s), time ×{args.time_scale:g} "
        f"({1800 * args.time_scale:g} s windows), {args.windows} windows, "
        f"medians of {args.repeat}"
    )
    base = None
    for accounts in (1, 2, 3):
        results = [
            measure(accounts, args.runs, args.time_scale, args.windows, args.budget)
            for _ in range(args.repeat)
        ]
        rate = statistics.median(r["candles_per_window"] for r in results)
        base = base or rate
        last = results[-1]
        print(
            f"  {accounts} account{'s' if accounts > 1 else ' '}: {rate:,.0f} candles/window "
            f"(×{rate / base:.2f}, linear ×{accounts}: {rate / base / accounts:.1%}), "
            f"at Upstox's 2000/30 min ≈ {rate * 2000 / args.budget:,.0f} candles/30 min; "
            f"429s {max(r['server_429s'] for r in results)} (max); last run: "
            f"runs by account {last['runs_by_account']}, requests by token "
            f"{last['requests_by_token']}, failed runs {last['runs_failed']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
