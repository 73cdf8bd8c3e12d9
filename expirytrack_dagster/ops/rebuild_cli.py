"""The ``expirytrack rebuild`` command line (the work is in ``ops.rebuild``, imported when run)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cmd_rebuild(args: argparse.Namespace) -> int:
    """The ``rebuild`` command: rebuild, then say what was restored and what was not."""
    from expirytrack_dagster.definitions import defs
    from expirytrack_dagster.ops.rebuild import rebuild
    from expirytrack_dagster.storage.stores import StoreError

    collection = defs.resources["collection"]
    try:
        report = rebuild(collection, args.partitions)
    except StoreError as exc:
        print(f"expirytrack rebuild: error: {exc}", file=sys.stderr)
        return 2
    if report.damaged_copy is not None:
        print(f"The database was damaged: {report.damage}")
        print(f"  moved aside to {report.damaged_copy}")
        if report.copied_tables:
            print(f"  copied from it: {', '.join(report.copied_tables)}")
        if report.lost_tables:
            print(
                f"  could not be read: {', '.join(report.lost_tables)} — run `expirytrack "
                "backfill SYMBOL` for the partitions to restore them (no candle requests)"
            )
    if report.pruned:
        _say_pruned(report.pruned, damaged=report.damaged_copy is not None)
    total = sum(report.partitions.values())
    print(
        f"Rebuilt {len(report.partitions)} partition(s), {total:,} candles, from "
        f"{Path(collection.landing_dir).resolve()} into {Path(collection.database).resolve()}; "
        "0 API requests."
    )
    return 0


def _say_pruned(keys: list[str], *, damaged: bool) -> None:
    """Name the pruned partitions rebuild left alone, and why."""
    names = ", ".join(keys)
    if damaged:
        print(
            f"Not rebuilt, pruned: {names}. Their candles were only in the damaged database: "
            "restore the last backup (`expirytrack restore ARCHIVE`), or `expirytrack delete "
            "PARTITION` and collect it again (this spends API budget)."
        )
    else:
        print(
            f"Skipped {len(keys)} pruned partition(s): {names}. Their landing files were "
            "pruned after verification, so their candles live only in the database (left "
            "as they are); the landing cannot restore them."
        )


def add_rebuild_command(commands: argparse._SubParsersAction) -> None:
    """Register ``expirytrack rebuild [PARTITION…]``."""
    sub = commands.add_parser(
        "rebuild",
        help="recreate the candle tables from the landing zone (no API requests)",
        description="Recreate the candle tables from the landing zone, with no API request.",
    )
    sub.add_argument(
        "partitions", nargs="*", metavar="PARTITION", help="e.g. NIFTY_2025-08-28; default: all"
    )
    sub.set_defaults(func=cmd_rebuild)
