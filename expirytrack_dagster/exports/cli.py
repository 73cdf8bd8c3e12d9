"""``expirytrack export``: the selection as flags, a progress bar on stderr, a summary on stdout.

Reads the collection database of the settings (``EXPIRYTRACK_SOURCE=sandbox`` reads the
sandbox's), or ``--database PATH``, read-only. A selection that matches nothing, a bad value or
an output directory that already holds files is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

from expirytrack_dagster.exports.formats import FORMAT_NAMES
from expirytrack_dagster.research.resample import INTERVAL_MINUTES

EXAMPLE = (
    "example: expirytrack export --format parquet --underlying NIFTY --since 2025-07-01 "
    '--monthly --type CE --type PE --atm 5 --at "2025-08-14 10:30" --interval 5minute --out exports/'
)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD") from None


def _strikes(text: str) -> tuple[float, float]:
    low, sep, high = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return float(low), float(high)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a strike range: use LOW:HIGH, e.g. 24000:25000"
        ) from None


def _count(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return int(text)


def _split(values: list[str] | None) -> tuple[str, ...]:
    return tuple(v for value in values or () for v in value.split(",") if v.strip())


def add_export_command(commands: argparse._SubParsersAction) -> None:
    """Register ``expirytrack export``."""
    parser = commands.add_parser(
        "export",
        help="export collected candles to Parquet, CSV, Excel, AmiBroker or MetaTrader 5",
        description="Export a selection of collected candles (optionally resampled, bars aligned "
        "to the session open) with a manifest of files, row counts and checksums.",
        epilog=EXAMPLE,
    )
    parser.add_argument("--format", required=True, choices=FORMAT_NAMES)
    parser.add_argument(
        "--underlying", action="append", required=True, help="e.g. NIFTY (repeat or comma-separate)"
    )
    parser.add_argument("--out", required=True, type=Path, help="a new (or empty) directory")
    parser.add_argument("--expiry", action="append", type=_day, help="an expiry date (repeatable)")
    parser.add_argument("--since", type=_day, help="first expiry date of a range")
    parser.add_argument("--until", type=_day, help="last expiry date of a range")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--monthly", action="store_true", help="monthly expiries only")
    kind.add_argument("--weekly", action="store_true", help="weekly expiries only")
    parser.add_argument("--type", action="append", help="CE, PE or FUT (repeatable; default all)")
    parser.add_argument("--strikes", type=_strikes, help="strike range LOW:HIGH")
    parser.add_argument("--atm", type=_count, help="N strikes either side of the ATM strike")
    parser.add_argument("--at", help='the minute the ATM strike is taken at, "YYYY-MM-DD HH:MM"')
    parser.add_argument("--start", help="first candle date or minute (IST)")
    parser.add_argument("--end", help="last candle date or minute (IST), inclusive")
    parser.add_argument("--interval", default="1minute", choices=list(INTERVAL_MINUTES))
    parser.add_argument("--gzip", action="store_true", help="CSV: gzip-compressed files")
    parser.add_argument("--per-contract", action="store_true", help="CSV: one file per contract")
    parser.add_argument(
        "--sheet-by", default="expiry", choices=("expiry", "expiry_type"), help="XLSX sheets"
    )
    parser.add_argument("--database", default=None, help="DuckDB file (default: the settings')")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    """Run one export from the command line."""
    from tqdm import tqdm

    from expirytrack_dagster.exports.formats import WriteOptions
    from expirytrack_dagster.exports.run import export
    from expirytrack_dagster.exports.selection import ExportError, Selection
    from expirytrack_dagster.research.api import default_database
    from expirytrack_dagster.storage.database import DatabaseLocked

    prog = "expirytrack export"
    bar: tqdm | None = None

    def on_total(total: int) -> None:
        nonlocal bar
        bar = tqdm(total=total, unit=" rows", unit_scale=True, file=sys.stderr, leave=False)

    def progress(rows: int) -> None:
        if bar is not None:
            bar.update(rows)

    # Counting the rows is a pass of its own (for bars, the whole aggregation): only for a bar.
    show_bar = not args.no_progress and sys.stderr.isatty()
    started = time.perf_counter()
    try:
        low, high = args.strikes if args.strikes else (None, None)
        selection = Selection(
            underlyings=_split(args.underlying),
            expiries=tuple(args.expiry or ()),
            expiry_from=args.since,
            expiry_to=args.until,
            expiry_kind="monthly" if args.monthly else "weekly" if args.weekly else "all",
            types=_split(args.type) or ("CE", "PE", "FUT"),
            strike_min=low,
            strike_max=high,
            atm=args.atm,
            atm_at=args.at,
            start=args.start,
            end=args.end,
            interval=args.interval,
        )
        options = WriteOptions(
            gzip=args.gzip, per_contract=args.per_contract, sheet_by=args.sheet_by
        )
        database = Path(args.database) if args.database else default_database()
        result = export(
            selection,
            args.format,
            args.out,
            database=database,
            options=options,
            on_total=on_total if show_bar else None,
            progress=progress,
        )
    except (ExportError, DatabaseLocked, ValueError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()
    manifest = result.manifest
    marker = " — SYNTHETIC sandbox data" if manifest.synthetic else ""
    print(
        f"Exported {manifest.rows:,} rows ({args.format}, {args.interval}) in "
        f"{len(manifest.files)} file(s) to {result.directory} in "
        f"{time.perf_counter() - started:.1f} s{marker}"
    )
    print(f"Manifest: {result.manifest_path}")
    return 0
