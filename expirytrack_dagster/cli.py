"""The ``expirytrack`` command: demo, dev (Dagster UI), sandbox, login, logout, status.

``expirytrack demo`` is the main job end to end: against the built-in sandbox when no
``UPSTOX_ACCESS_TOKEN`` is set (no account needed), against Upstox when it is.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from expirytrack_dagster.credentials.cli import add_credential_commands
from expirytrack_dagster.credentials.guard import has_stored_token
from expirytrack_dagster.sandbox.cli import DESCRIPTION as SANDBOX_HELP
from expirytrack_dagster.sandbox.cli import add_arguments as add_sandbox_arguments
from expirytrack_dagster.sandbox.cli import serve as serve_sandbox

if TYPE_CHECKING:  # dagster is imported lazily: `expirytrack status` should start fast
    from dagster import DagsterInstance, Definitions

DEMO_UNDERLYINGS = ("NIFTY", "BANKNIFTY", "SENSEX")
DEMO_SANDBOX_TIME_SCALE = 0.02
"""The demo's sandbox enforces the Upstox windows 50× faster (30 minutes → 36 s) so a few
partitions finish in minutes; the client's limiter is scaled identically and still meets them."""


def _dagster_home() -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or Path("data/dagster_home").resolve())
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _start_sandbox(stack: ExitStack) -> object:
    from expirytrack_dagster.sandbox import SandboxConfig, run_sandbox

    sandbox = stack.enter_context(run_sandbox(SandboxConfig(time_scale=DEMO_SANDBOX_TIME_SCALE)))
    os.environ["EXPIRYTRACK_SOURCE"] = "sandbox"
    os.environ["EXPIRYTRACK_SANDBOX_URL"] = sandbox.base_url
    os.environ["EXPIRYTRACK_SANDBOX_TOKEN"] = sandbox.access_token
    os.environ["EXPIRYTRACK_SANDBOX_CA"] = str(sandbox.ca_cert_path)
    os.environ["EXPIRYTRACK_TIME_SCALE"] = str(DEMO_SANDBOX_TIME_SCALE)
    return sandbox


def _human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def cmd_demo(args: argparse.Namespace) -> int:
    """Collect a handful of partitions through real Dagster runs and print a summary."""
    started = time.monotonic()
    home = _dagster_home()
    with ExitStack() as stack:
        sandbox = None
        if os.environ.get("UPSTOX_ACCESS_TOKEN"):
            print("Source: the real Upstox API (UPSTOX_ACCESS_TOKEN is set).")
        elif has_stored_token(None):
            print("Source: the real Upstox API (the token `expirytrack login` stored).")
        else:
            sandbox = _start_sandbox(stack)
            print(
                f"Source: the built-in Upstox SANDBOX at {sandbox.base_url} — synthetic data, no "
                "account needed.\n        Set UPSTOX_ACCESS_TOKEN (or run `expirytrack login`) "
                "to collect real data."
            )
        from dagster import DagsterInstance

        from expirytrack_dagster.backfill import final_expiries
        from expirytrack_dagster.definitions import defs
        from expirytrack_dagster.partitions import build_partition_key, expiry_partitions

        upstox = defs.resources["upstox"]
        collection = defs.resources["collection"]
        symbols = [s.strip() for s in args.underlyings.split(",") if s.strip()]
        delay = timedelta(minutes=collection.final_after_close_minutes)
        keys = [
            build_partition_key(symbol, d)
            for symbol, days in final_expiries(upstox, symbols, delay).items()
            for d in days[-args.per_underlying :]
        ]
        instance = DagsterInstance.get()
        instance.add_dynamic_partitions(expiry_partitions.name, keys)
        print(f"Dagster instance: {home}")
        print(f"Collecting {len(keys)} partitions: {', '.join(keys)}")
        failed = _collect(defs, instance, keys)
        _print_summary(Path(collection.database), keys, sandbox, time.monotonic() - started)
        return 1 if failed else 0


def _collect(defs: Definitions, instance: DagsterInstance, keys: list[str]) -> list[str]:
    """Run ``collect_expiry`` once per partition here, a line each; return the failed keys."""
    job = defs.resolve_job_def("collect_expiry")
    failed = []
    for key in keys:
        started = time.monotonic()
        result = job.execute_in_process(
            partition_key=key,
            instance=instance,
            raise_on_error=False,
            # The full event log is in the UI; the console shows one line per partition.
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        verdict = "ok" if result.success else "FAILED"
        print(
            f"  {key}: run {result.run_id[:8]} {verdict} in {time.monotonic() - started:.1f}s, "
            f"{_check_summary(result.get_asset_check_evaluations())}"
        )
        if not result.success:
            failed.append(key)
    return failed


def _check_summary(evaluations: list) -> str:
    """'quality checks: 10/10 passed' or which failed, with their severity."""
    failed = [e for e in evaluations if not e.passed]
    text = f"quality checks: {len(evaluations) - len(failed)}/{len(evaluations)} passed"
    if failed:
        text += " — failed: " + ", ".join(
            f"{e.check_name} ({e.severity.value})"
            for e in sorted(failed, key=lambda e: e.check_name)
        )
    return text


def _print_summary(database: Path, keys: list[str], sandbox: object | None, elapsed: float) -> None:
    from expirytrack_dagster.storage.database import connect

    with connect(database, read_only=True) as db:
        placeholders = ",".join("?" for _ in keys)
        contracts = db.execute(
            f"SELECT count(*) FROM contracts WHERE partition_key IN ({placeholders})", keys
        ).fetchone()[0]
        candles = db.execute(
            f"SELECT count(*) FROM candles WHERE partition_key IN ({placeholders})", keys
        ).fetchone()[0]
        status = dict(
            db.execute(
                "SELECT status, count(*) FROM candle_fetch_status "
                f"WHERE partition_key IN ({placeholders}) GROUP BY status",
                keys,
            ).fetchall()
        )
    requests = sandbox.stats()["total"] if sandbox is not None else None
    print("\nSummary")
    print(f"  source        : {'sandbox (synthetic data)' if sandbox else 'Upstox API'}")
    print(f"  partitions    : {len(keys)}")
    print(f"  contracts     : {contracts:,}")
    print(f"  candles       : {candles:,}")
    print(f"  contract-days : {', '.join(f'{k} {v:,}' for k, v in sorted(status.items()))}")
    if requests is not None:
        print(f"  API requests  : {requests:,} (as counted by the sandbox)")
    print(f"  elapsed       : {elapsed:.1f}s")
    print(f"  database      : {database.resolve()} ({_human_bytes(database.stat().st_size)})")
    print("  see the runs  : make dev, then open http://127.0.0.1:3000 (Runs, Assets → candles)")
    print(
        f"  collect more  : expirytrack demo --per-underlying 3 --underlyings {','.join(DEMO_UNDERLYINGS)},FINNIFTY"
    )


def _parse_day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def cmd_partitions(args: argparse.Namespace) -> int:
    """Print partition keys of one underlying, comma-separated (for `dagster job backfill`)."""
    _dagster_home()
    from dagster import DagsterInstance

    from expirytrack_dagster.backfill import discover, select_partitions
    from expirytrack_dagster.definitions import defs

    instance = DagsterInstance.get()
    if args.discover:
        collection = defs.resources["collection"]
        delay = timedelta(minutes=collection.final_after_close_minutes)
        discover(instance, defs.resources["upstox"], args.symbol, delay)
    keys = select_partitions(
        instance,
        args.symbol,
        missing=args.missing,
        start=_parse_day(args.since),
        end=_parse_day(args.until),
    )
    print(",".join(keys))
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    """Discover an underlying's expiries and collect the selected partitions here, one run each."""
    _dagster_home()
    from dagster import DagsterInstance

    from expirytrack_dagster.backfill import (
        describe_budget,
        discover,
        estimate_requests,
        select_partitions,
    )
    from expirytrack_dagster.definitions import defs

    instance = DagsterInstance.get()
    upstox = defs.resources["upstox"]
    collection = defs.resources["collection"]
    discover(instance, upstox, args.symbol, timedelta(minutes=collection.final_after_close_minutes))
    keys = select_partitions(
        instance,
        args.symbol,
        missing=args.missing,
        start=_parse_day(args.since),
        end=_parse_day(args.until),
    )
    if args.limit:
        keys = keys[-args.limit :]
    windows = -(-(collection.lookback_months * 31) // upstox.intraday_max_span_days)
    requests = estimate_requests(keys, 200, windows)
    print(f"{len(keys)} partitions of {args.symbol} from {upstox.describe_source()}")
    print(f"  ≈ {requests:,} API requests, {describe_budget(requests, upstox.per_30_minutes)}")
    return 1 if _collect(defs, instance, keys) else 0


def cmd_dev(args: argparse.Namespace) -> int:
    """Start the Dagster UI and daemon on the project's DAGSTER_HOME."""
    _dagster_home()
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "dev", "-w", "workspace.yaml", "--port", str(args.port)]
    os.execv(command[0], command)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="expirytrack", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="collect a few partitions end to end and summarise")
    demo.add_argument("--underlyings", default=",".join(DEMO_UNDERLYINGS))
    demo.add_argument("--per-underlying", type=int, default=1, help="latest N expiries each")
    demo.set_defaults(func=cmd_demo)
    for name, func, text in (
        (
            "partitions",
            cmd_partitions,
            "print partition keys of an underlying (for dagster job backfill)",
        ),
        ("backfill", cmd_backfill, "collect an underlying's partitions here, one Dagster run each"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("symbol", help="a watched underlying, e.g. NIFTY")
        sub.add_argument("--missing", action="store_true", help="only partitions never collected")
        sub.add_argument("--since", help="first expiry date, YYYY-MM-DD")
        sub.add_argument("--until", help="last expiry date, YYYY-MM-DD")
        if name == "partitions":
            sub.add_argument(
                "--discover", action="store_true", help="ask Upstox for new expiries first"
            )
        else:
            sub.add_argument("--limit", type=int, help="only the latest N selected partitions")
        sub.set_defaults(func=func)
    dev = commands.add_parser("dev", help="start the Dagster UI + daemon (sensors, backfills)")
    dev.add_argument("--port", type=int, default=3000)
    dev.set_defaults(func=cmd_dev)
    sandbox = commands.add_parser(
        "sandbox", help="serve the synthetic Upstox API on loopback", description=SANDBOX_HELP
    )
    add_sandbox_arguments(sandbox)
    sandbox.set_defaults(func=serve_sandbox)
    add_credential_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
