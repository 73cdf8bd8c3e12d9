"""Command line for the sandbox: start it on a port, print how to reach it, serve until Ctrl-C."""

from __future__ import annotations

import argparse
import json
import threading
from datetime import date
from pathlib import Path

from expirytrack_dagster.sandbox.config import SandboxConfig, ist_today
from expirytrack_dagster.sandbox.profiles import UnderlyingProfile
from expirytrack_dagster.sandbox.ranges import DEFAULT_MAX_SPAN_DAYS
from expirytrack_dagster.sandbox.server import Sandbox, run_sandbox

DESCRIPTION = "Serve a SYNTHETIC stand-in for the Upstox expired-instruments API on 127.0.0.1."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m expirytrack_dagster.sandbox", description=DESCRIPTION
    )
    return add_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The sandbox's options, on ``parser`` (also `expirytrack sandbox`)."""
    parser.add_argument(
        "--port", type=int, default=8765, help="port on 127.0.0.1 (0: any free port)"
    )
    parser.add_argument("--seed", type=int, default=7, help="market seed (same seed, same data)")
    parser.add_argument(
        "--today", type=date.fromisoformat, default=None, help="market date, YYYY-MM-DD"
    )
    parser.add_argument(
        "--history-days", type=int, default=365, help="how far back expiries are listed"
    )
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="multiplies rate-window lengths"
    )
    parser.add_argument(
        "--max-span-days",
        type=_positive_int,
        default=None,
        metavar="N",
        help="longest candle request for 1/3/5/15minute, days counting both ends "
        f"(default {DEFAULT_MAX_SPAN_DAYS['1minute']}; e.g. 3650 lets every window through)",
    )
    parser.add_argument(
        "--range-behaviour",
        choices=("error", "keep-recent", "keep-earliest"),
        default="error",
        help="what a longer request gets: error (400 UDAPI1148), keep-recent (200, only its "
        "last N days) or keep-earliest (200, only its first N days)",
    )
    parser.add_argument("--token", default=None, help="accept this access token (default: random)")
    parser.add_argument(
        "--extra-token",
        dest="extra_tokens",
        action="append",
        default=[],
        metavar="TOKEN",
        help="accept this token too, with its own rate windows (a second Upstox account); "
        "repeat for more",
    )
    parser.add_argument(
        "--no-plus-plan",
        dest="plus_plan",
        action="store_false",
        help="the token's user has no Upstox Plus plan: every expired-instruments request "
        "answers UDAPI1149",
    )
    parser.add_argument(
        "--profiles", type=Path, default=None, help="JSON file: a list of extra underlying profiles"
    )
    return parser


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    extra: tuple[UnderlyingProfile, ...] = ()
    if args.profiles is not None:
        extra = tuple(
            UnderlyingProfile.from_mapping(p) for p in json.loads(args.profiles.read_text())
        )
    return SandboxConfig(
        seed=args.seed,
        today=args.today or ist_today(),
        history_days=args.history_days,
        time_scale=args.time_scale,
        max_span_days=args.max_span_days or {},
        range_behaviour=args.range_behaviour,
        extra_profiles=extra,
        port=args.port,
        access_token=args.token,
        extra_tokens=tuple(args.extra_tokens),
        plus_plan=args.plus_plan,
    )


def banner(sandbox: Sandbox) -> str:
    """What a user needs to point a client at the sandbox."""
    cfg = sandbox.config
    example = (
        f'curl --cacert {sandbox.ca_cert_path} -H "Authorization: Bearer {sandbox.access_token}" '
        f'"{sandbox.base_url}/v2/expired-instruments/expiries?instrument_key=NSE_INDEX%7CNifty%2050"'
    )
    return "\n".join(
        [
            "ExpiryTrack Upstox sandbox -- SYNTHETIC market data, not from Upstox",
            f"  base URL : {sandbox.base_url}",
            f"  CA cert  : {sandbox.ca_cert_path}",
            f"  token    : {sandbox.access_token}",
            f"  market   : seed {cfg.seed}, today {sandbox.market.today}, "
            f"{', '.join(p.symbol for p in sandbox.market.book.profiles)}",
            f"  ranges   : {_describe_ranges(sandbox)}",
            f"  try      : {example}",
            "Serving until Ctrl-C.",
        ]
    )


def _describe_ranges(sandbox: Sandbox) -> str:
    policy = sandbox.range_policy
    spans = policy.max_span_days
    return (
        f"intraday requests up to {spans['1minute']} days, 30minute/day up to {spans['day']}; "
        f"longer: {policy.behaviour.replace('_', '-')}"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the sandbox until interrupted; returns the process exit code."""
    return serve(build_parser().parse_args(argv))


def serve(args: argparse.Namespace) -> int:
    """Serve the sandbox ``args`` describe (from ``add_arguments``) until Ctrl-C."""
    config = config_from_args(args)
    try:
        with run_sandbox(config) as sandbox:
            print(banner(sandbox), flush=True)
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                print("\nStopping the sandbox.", flush=True)
    except OSError as exc:
        print(f"cannot start the sandbox on port {config.port}: {exc}")
        return 1
    return 0
