"""The ``expirytrack`` command: demo, dev (Dagster UI), sandbox, login, logout, status.

``expirytrack demo`` is the main job end to end: against the built-in sandbox when no
``UPSTOX_ACCESS_TOKEN`` is set (no account needed), against Upstox when it is.

Bad input is one line on stderr naming the value and the accepted form, exit code 2. Ctrl-C
(or SIGTERM) stops ``backfill`` and ``demo`` after the current run is cleaned up (exit 130); a
second Ctrl-C stops at once.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack, suppress
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from expirytrack_dagster.startup_gc import long_lived_objects

with long_lived_objects():  # they bring in Dagster and pandas (see startup_gc)
    from expirytrack_dagster.credentials.cli import add_credential_commands
    from expirytrack_dagster.credentials.guard import has_stored_token
    from expirytrack_dagster.ops.cli import add_ops_commands

if TYPE_CHECKING:  # dagster is imported lazily: `expirytrack status` should start fast
    from dagster import DagsterInstance, Definitions

DEMO_UNDERLYINGS = ("NIFTY", "BANKNIFTY", "SENSEX")
DEMO_SANDBOX_TIME_SCALE = 0.02
"""The demo's sandbox enforces the Upstox windows 50× faster (30 minutes → 36 s) so a few
partitions finish in minutes; the client's limiter is scaled identically and still meets them."""
DEV_STOP_GRACE_S = 30.0
"""How long ``expirytrack dev`` waits for ``dagster dev`` to shut down after Ctrl-C before killing
it and everything it started."""


class UsageError(Exception):
    """Bad input: the message is one line naming the value and the accepted form (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``expirytrack backfill: error: …`` and exit code 2.

    A parser with ``hides_values = True`` (``login``) never repeats a long value it was given:
    it may be a secret typed in the wrong place.
    """

    hides_values = False

    def error(self, message: str) -> NoReturn:
        if self.hides_values:
            message = re.sub(r"'[^']{12,}'", "'<value hidden>'", message)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def plural(count: int, word: str) -> str:
    """``1 partition``, ``2 partitions``, ``1,024 requests``."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _day(text: str) -> date:
    """argparse type: an ISO date."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date: use YYYY-MM-DD, e.g. 2026-11-01"
        ) from None


def _positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


def _port(text: str) -> int:
    """argparse type: a TCP port."""
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number from 1 to 65535")
    return int(text)


def _watched(symbols: Sequence[str]) -> list[str]:
    """The symbols if every one is a watched underlying; ``UsageError`` naming the choices."""
    from expirytrack_dagster.instruments import config_path, watched_underlyings

    known = [u.symbol for u in watched_underlyings()]
    unknown = [s for s in symbols if s not in known]
    where = f"(or add it under 'underlyings:' in {config_path()})"
    if not symbols:
        raise UsageError(f"no underlying given: name watched ones, from {', '.join(known)}")
    if unknown:
        raise UsageError(
            f"{', '.join(repr(s) for s in unknown)}: not a watched underlying; choose from "
            f"{', '.join(known)} {where}"
        )
    return list(symbols)


def _check_range(args: argparse.Namespace) -> None:
    if args.since and args.until and args.since > args.until:
        raise UsageError(
            f"--since {args.since} is after --until {args.until}: give the earlier date first"
        )


def _confirm(question: str, action: str, args: argparse.Namespace) -> bool:
    """True with ``--yes``, or when the user answers yes on a terminal; ``UsageError`` without one."""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(f"refusing to {action} without confirmation (no terminal): pass --yes")
    try:
        answer = input(f"{question} [y/N] ").strip().lower()
    except EOFError:  # the terminal closed: no answer is no
        return False
    return answer in ("y", "yes")


def _report_foreign(instance: DagsterInstance) -> None:
    """One stderr line naming the partition keys that are not ours, if there are any."""
    from expirytrack_dagster.backfill import foreign_partitions

    foreign = foreign_partitions(instance)
    if foreign:
        print(
            f"Skipping {plural(len(foreign), 'partition key')} not of the form SYMBOL_YYYY-MM-DD "
            f"(added by hand?): {', '.join(foreign)}; `expirytrack partitions --remove-foreign` "
            "removes them.",
            file=sys.stderr,
        )


def _dagster_home() -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or Path("data/dagster_home").resolve())
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _definitions(env: dict[str, str] | None = None) -> Definitions:
    """The project's definitions for this process's settings, with ``env`` over its variables."""
    with long_lived_objects():
        from expirytrack_dagster.definitions import build_definitions
        from expirytrack_dagster.project_settings import load_settings

        return build_definitions(load_settings(env={**os.environ, **(env or {})}))


def _start_sandbox(stack: ExitStack) -> tuple[object, dict[str, str]]:
    """A served sandbox for the demo's runs, and the settings variables that point them at it."""
    from expirytrack_dagster.sandbox_resource import import_sandbox

    sandbox_module = import_sandbox()
    config = sandbox_module.SandboxConfig(time_scale=DEMO_SANDBOX_TIME_SCALE)
    sandbox = stack.enter_context(sandbox_module.run_sandbox(config))
    env = {
        "EXPIRYTRACK_SOURCE": "sandbox",
        "EXPIRYTRACK_SANDBOX_URL": sandbox.base_url,
        "EXPIRYTRACK_SANDBOX_TOKEN": sandbox.access_token,
        "EXPIRYTRACK_SANDBOX_CA": str(sandbox.ca_cert_path),
        "EXPIRYTRACK_TIME_SCALE": str(DEMO_SANDBOX_TIME_SCALE),
    }
    return sandbox, env


def _human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def cmd_demo(args: argparse.Namespace) -> int:
    """Collect a handful of partitions through real Dagster runs and print a summary."""
    if args.live:
        from expirytrack_dagster.live.demo import run_live_demo

        return run_live_demo()
    started = time.monotonic()
    symbols = _watched([s.strip() for s in args.underlyings.split(",") if s.strip()])
    home = _dagster_home()
    with ExitStack() as stack:
        sandbox, sandbox_env = None, {}
        if os.environ.get("UPSTOX_ACCESS_TOKEN"):
            print("Source: the real Upstox API (UPSTOX_ACCESS_TOKEN is set).")
        elif has_stored_token(None):
            print("Source: the real Upstox API (the token `expirytrack login` stored).")
        else:
            from expirytrack_dagster.sandbox_stores import use_sandbox_dagster_home

            sandbox, sandbox_env = _start_sandbox(stack)
            home = use_sandbox_dagster_home()
            print(
                f"Source: the built-in Upstox SANDBOX at {sandbox.base_url} — synthetic data, no "
                "account needed.\n        Set UPSTOX_ACCESS_TOKEN (or run `expirytrack login`) "
                "to collect real data."
            )
        from dagster import DagsterInstance

        from expirytrack_dagster.expiry_listing import final_expiries
        from expirytrack_dagster.partitions import build_partition_key, expiry_partitions

        defs = _definitions(sandbox_env)
        upstox = defs.resources["upstox"]
        collection = defs.resources["collection"]
        if sandbox is not None:
            from expirytrack_dagster.sandbox_stores import describe_sandbox_stores

            print(describe_sandbox_stores(collection.database, collection.landing_dir, home))
        delay = timedelta(minutes=collection.final_after_close_minutes)
        keys = [
            build_partition_key(symbol, d)
            for symbol, days in final_expiries(upstox, symbols, delay).items()
            for d in days[-args.per_underlying :]
        ]
        instance = DagsterInstance.get()
        _fail_orphans(instance)
        instance.add_dynamic_partitions(expiry_partitions.name, keys)
        print(f"Dagster instance: {home}")
        print(f"Collecting {plural(len(keys), 'partition')}: {', '.join(keys)}", flush=True)
        from expirytrack_dagster.runs import EXIT_INTERRUPTED, report_coverage

        code = _collect(instance, keys, sandbox_env)
        if code != EXIT_INTERRUPTED and Path(collection.database).exists():
            # The table and picture of every partition the README shows after the demo.
            code = code or (0 if report_coverage(instance, defs.resources) else 1)
        if Path(collection.database).exists():  # not when stopped before anything was written
            _print_summary(Path(collection.database), keys, sandbox, time.monotonic() - started)
        return code


def _fail_orphans(instance: DagsterInstance) -> None:
    """Mark failed the runs whose process was killed earlier (they would hold the writer slot)."""
    from expirytrack_dagster.sensors import fail_orphaned_runs

    orphaned = fail_orphaned_runs(instance)
    if orphaned:
        print(
            f"Marked {plural(len(orphaned), 'run')} failed whose process is gone (killed earlier): "
            f"{', '.join(r[:8] for r in orphaned)}",
            file=sys.stderr,
        )


def _collect(instance: DagsterInstance, keys: list[str], env: dict[str, str] | None = None) -> int:
    """Run the partitions (see ``expirytrack_dagster.runs``; ``env``: settings variables for
    their processes); the exit code: 0, 1 or 130."""
    from expirytrack_dagster.runs import EXIT_INTERRUPTED, collect

    outcome = collect(instance, keys, env)
    if outcome.stopped_by:
        print(
            f"Stopped by {outcome.stopped_by} after {plural(len(outcome.statuses), 'run')} of "
            f"{len(keys)}; data collected so far is kept. Run the same command again to go on.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return 1 if outcome.failed else 0


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


def cmd_partitions(args: argparse.Namespace) -> int:
    """Print partition keys of one underlying, comma-separated (for `dagster job backfill`)."""
    if args.remove_foreign:
        return _remove_foreign(args)
    if args.symbol is None:
        raise UsageError("name an underlying, e.g. `expirytrack partitions NIFTY --missing`")
    instance = _instance_for(args)
    print(",".join(_select(instance, args, discover=args.discover)))
    return 0


def _instance_for(args: argparse.Namespace) -> DagsterInstance:
    """Check ``args.symbol`` and the date range, then open the project's Dagster instance."""
    _watched([args.symbol])
    _check_range(args)
    _dagster_home()
    with long_lived_objects():
        from dagster import DagsterInstance

        return DagsterInstance.get()


def _select(instance: DagsterInstance, args: argparse.Namespace, *, discover: bool) -> list[str]:
    """The partition keys of ``args.symbol`` that ``args`` selects, in expiry order.

    With ``discover``, Upstox's list of final expiries is asked first and added as partitions.
    Keys that are not ours are named once on stderr and skipped.
    """
    from expirytrack_dagster import backfill

    defs = _definitions()  # every setting is checked, also when nothing is discovered
    _report_foreign(instance)
    if discover:
        collection = defs.resources["collection"]
        delay = timedelta(minutes=collection.final_after_close_minutes)
        backfill.discover(instance, defs.resources["upstox"], args.symbol, delay)
    return backfill.select_partitions(
        instance, args.symbol, missing=args.missing, start=args.since, end=args.until
    )


def _remove_foreign(args: argparse.Namespace) -> int:
    """``partitions --remove-foreign``: delete the partition keys that are not ours."""
    if args.symbol is not None or args.missing or args.since or args.until or args.discover:
        raise UsageError("--remove-foreign takes no underlying and no selection options")
    _dagster_home()
    from dagster import DagsterInstance

    from expirytrack_dagster.backfill import foreign_partitions, remove_partitions

    instance = DagsterInstance.get()
    foreign = foreign_partitions(instance)
    if not foreign:
        print("No partition keys to remove: every key is SYMBOL_YYYY-MM-DD.")
        return 0
    print(f"Partition keys not of the form SYMBOL_YYYY-MM-DD: {', '.join(foreign)}")
    if not _confirm(
        f"Remove {plural(len(foreign), 'partition key')}?", "remove partition keys", args
    ):
        print("Nothing removed.")
        return 1
    remove_partitions(instance, foreign)
    print(f"Removed {plural(len(foreign), 'partition key')} (their past runs stay in the UI).")
    return 0


def _verified_span(upstox: object, interval: str) -> int | None:
    """The request span verified for this API host and interval, if one is (see upstox.spans)."""
    from urllib.parse import urlsplit

    from expirytrack_dagster.upstox.spans import SPANS_FILE, SpanMemory

    path = Path(upstox.state_dir) / SPANS_FILE  # type: ignore[attr-defined]
    if not path.exists():
        return None
    host = urlsplit(upstox.base_url).netloc  # type: ignore[attr-defined]
    return SpanMemory(path).facts(host, interval).verified


def cmd_backfill(args: argparse.Namespace) -> int:
    """Discover an underlying's expiries and collect the selected partitions here, one run each."""
    instance = _instance_for(args)
    if not args.dry_run:
        _fail_orphans(instance)
    keys = _select(instance, args, discover=True)
    if args.limit:
        keys = keys[-args.limit :]
    if not keys:
        print(f"No partitions of {args.symbol} to collect with these options.")
        return 0
    from expirytrack_dagster.backfill import describe_budget, estimate_requests

    defs = _definitions()
    upstox = defs.resources["upstox"]
    collection = defs.resources["collection"]
    window_days = collection.lookback_months * 31
    verified = _verified_span(upstox, collection.interval)
    span = min(d for d in (upstox.max_span_days, verified, window_days) if d)
    windows = -(-window_days // span)
    from expirytrack_dagster.assets.index_candles import INDEX_SPAN_DAYS

    index_span = min(d for d in (upstox.max_span_days, INDEX_SPAN_DAYS) if d)
    requests = estimate_requests(keys, 200, windows, -(-window_days // index_span))
    print(f"{plural(len(keys), 'partition')} of {args.symbol} from {upstox.describe_source()}")
    print(f"  {keys[0]} … {keys[-1]}" if len(keys) > 1 else f"  {keys[0]}")
    print(
        f"  ≈ {plural(requests, 'API request')}, {describe_budget(requests, upstox.per_30_minutes)}"
    )
    print(
        f"  requests per contract: {windows}, "
        + (
            f"at the verified {verified}-day span"
            if verified
            else "if the API answers the whole window in one request (not verified yet; at "
            f"30-day windows it is {-(-window_days // 30)})"
        )
    )
    if args.dry_run:
        print("Dry run: nothing was collected.")
        return 0
    if not _confirm(
        f"Start {plural(len(keys), 'run')}, one per partition?", "spend the API budget", args
    ):
        print("Nothing collected.")
        return 1
    return _collect(instance, keys)


def cmd_dev(args: argparse.Namespace) -> int:
    """Start the Dagster UI and daemon on the project's DAGSTER_HOME; Ctrl-C stops them all.

    ``dagster dev`` runs as a child in its own process group: the first Ctrl-C (or SIGTERM) is
    passed on to it and waited for; a second one, or ``DEV_STOP_GRACE_S`` without an exit, kills
    the whole group (web server, daemon, code server).
    """
    _dagster_home()
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "dev", "-w", "workspace.yaml", "--port", str(args.port)]
    child = subprocess.Popen(
        command,
        start_new_session=True,
        # An inherited "ignore SIGINT" (a shell's background job) would make dagster dev deaf.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    signals: list[int] = []

    def forward(signum: int, frame: object) -> None:
        signals.append(signum)
        if len(signals) == 1:
            print(
                f"\n{signal.Signals(signum).name}: stopping Dagster (Ctrl-C again to kill it now).",
                file=sys.stderr,
                flush=True,
            )
            os.killpg(child.pid, signal.SIGINT)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    stopping_since: float | None = None
    while child.poll() is None:
        if signals and stopping_since is None:
            stopping_since = time.monotonic()
        overdue = stopping_since is not None and (
            time.monotonic() - stopping_since > DEV_STOP_GRACE_S
        )
        if len(signals) >= 2 or overdue:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            break
        with suppress(subprocess.TimeoutExpired):
            child.wait(timeout=0.2)
    with suppress(ProcessLookupError):  # whatever dagster dev left behind in its group goes too
        os.killpg(child.pid, signal.SIGKILL)
    if signals:
        return 130
    return child.returncode


def _add_sandbox_command(commands: argparse._SubParsersAction) -> None:
    """``expirytrack sandbox``; without the sandbox extra, a command that says how to get it."""
    help_text = "serve the synthetic Upstox API on loopback"
    try:
        from expirytrack_dagster.sandbox import cli as sandbox_cli
    except ModuleNotFoundError as exc:
        from expirytrack_dagster.sandbox_resource import SANDBOX_EXTRA_HINT

        missing = f"the sandbox needs {exc.name!r}, which is not installed: {SANDBOX_EXTRA_HINT}"

        def unavailable(args: argparse.Namespace) -> int:
            raise UsageError(missing)

        parser = commands.add_parser("sandbox", help=help_text, description=missing)
        parser.set_defaults(func=unavailable)
        return
    parser = commands.add_parser("sandbox", help=help_text, description=sandbox_cli.DESCRIPTION)
    sandbox_cli.add_arguments(parser)
    parser.set_defaults(func=sandbox_cli.serve)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="expirytrack", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="collect a few partitions end to end and summarise")
    demo.add_argument(
        "--underlyings",
        default=",".join(DEMO_UNDERLYINGS),
        help="watched underlyings, comma-separated",
    )
    demo.add_argument(
        "--per-underlying", type=_positive_int, default=1, help="latest N expiries each"
    )
    demo.add_argument(
        "--live",
        action="store_true",
        help="instead: the live OI capture and tracker against the sandbox, 20x real time",
    )
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
        sub.add_argument(
            "symbol",
            nargs="?" if name == "partitions" else None,
            help="a watched underlying, e.g. NIFTY",
        )
        sub.add_argument("--missing", action="store_true", help="only partitions never collected")
        sub.add_argument("--since", type=_day, help="first expiry date, YYYY-MM-DD")
        sub.add_argument("--until", type=_day, help="last expiry date, YYYY-MM-DD")
        if name == "partitions":
            sub.add_argument(
                "--discover", action="store_true", help="ask Upstox for new expiries first"
            )
            sub.add_argument(
                "--remove-foreign",
                action="store_true",
                help="delete partition keys not of the form SYMBOL_YYYY-MM-DD (asks first)",
            )
        else:
            sub.add_argument(
                "--limit", type=_positive_int, help="only the latest N selected partitions"
            )
            sub.add_argument(
                "--dry-run",
                action="store_true",
                help="print the plan and estimate, collect nothing",
            )
        sub.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        sub.set_defaults(func=func)
    dev = commands.add_parser("dev", help="start the Dagster UI + daemon (sensors, backfills)")
    dev.add_argument("--port", type=_port, default=3000)
    dev.set_defaults(func=cmd_dev)
    _add_sandbox_command(commands)
    add_credential_commands(commands)
    add_ops_commands(commands)
    from expirytrack_dagster.ops.rebuild_cli import add_rebuild_command

    add_rebuild_command(commands)
    from expirytrack_dagster.research.cli import add_research_commands

    add_research_commands(commands)
    from expirytrack_dagster.exports.cli import add_export_command

    add_export_command(commands)
    from expirytrack_dagster.explorer.cli import add_explore_command

    add_explore_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from expirytrack_dagster.credentials.cli import refuse_extra_login_arguments
    from expirytrack_dagster.runs import EXIT_INTERRUPTED, StoppedAtOnce
    from expirytrack_dagster.settings import SettingsError

    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["oi", "live"]:  # beside `expirytrack oi SYMBOL EXPIRY --at …`
        from expirytrack_dagster.live.cli import main as live_main

        return live_main(argv[2:])
    with long_lived_objects():  # the commands' modules are imported as the parser is built
        parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if args.command == "login":
            return refuse_extra_login_arguments()
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    prog = f"{parser.prog} {args.command}"
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except SettingsError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except StoppedAtOnce as exc:
        print(f"{prog}: stopped at once during {exc}; its run is marked failed.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted; nothing more was started.", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
