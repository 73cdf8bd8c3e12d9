"""``expirytrack oi live SYMBOL``: the live OI tracker in the terminal, from the stored snapshots."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, datetime
from pathlib import Path

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.live.view import (
    LiveViewError,
    candle_tracker,
    format_tracker,
    read_history,
    tracker,
)


def _live_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    from expirytrack_dagster.live.assets import live_dir
    from expirytrack_dagster.project_settings import load_settings

    return live_dir(load_settings().collection)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="expirytrack oi live",
        description="The live OI tracker: ATM ± N strikes of an underlying's expiry, CE and PE "
        "OI, OI change over 3/5/10/15/30 minutes, LTP and IV, refreshed every minute from the "
        "snapshots the live capture (Dagster job live_capture) stores. With --at, an expiry "
        "that was not captured live is replayed from its collected 1-minute candles.",
    )
    parser.add_argument("symbol", help="underlying, e.g. NIFTY")
    parser.add_argument("--expiry", type=date.fromisoformat, default=None, help="default: nearest")
    parser.add_argument("--strikes", type=int, default=3, help="strikes each side of ATM")
    parser.add_argument("--at", default=None, help='replay a minute, IST: "2026-11-20 10:30"')
    parser.add_argument("--once", action="store_true", help="print one frame and exit")
    parser.add_argument("--live-dir", default=None, help="snapshot files (default data/live)")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between refreshes")
    parser.add_argument(
        "--database", default=None, help="collected candles for --at replays (default data/)"
    )
    return parser


def _moment(at: str | None) -> datetime:
    if at is None:
        return datetime.now(IST)
    moment = datetime.fromisoformat(at)
    return moment.replace(tzinfo=IST) if moment.tzinfo is None else moment.astimezone(IST)


def main(argv: list[str]) -> int:
    """Run the view; exit 2 with one line when there is nothing to show."""
    args = build_parser().parse_args(argv)
    if args.strikes < 0:
        print("expirytrack oi live: error: --strikes must be >= 0", file=sys.stderr)
        return 2
    folder = _live_dir(args.live_dir)
    while True:
        at = _moment(args.at)
        symbol = args.symbol.upper()
        try:
            try:
                history = read_history(folder, symbol, at, args.expiry)
                view = tracker(history, symbol, args.strikes)
            except LiveViewError as live_missing:
                if not args.at:
                    raise
                try:  # history of an expiry never captured live: its collected candles
                    view = candle_tracker(
                        symbol, at, args.expiry, args.strikes, database=args.database
                    )
                except LiveViewError as no_candles:
                    raise LiveViewError(f"{live_missing}; and {no_candles}") from None
            frame = format_tracker(view, at)
        except LiveViewError as exc:
            print(f"expirytrack oi live: error: {exc}", file=sys.stderr)
            return 2
        if args.once or args.at:
            print(frame)
            return 0
        if sys.stdout.isatty():
            print("\033[2J\033[H", end="")
        print(frame, flush=True)
        time.sleep(args.every)
