"""The ``expirytrack explore`` command: serve the explorer over a collected database."""

from __future__ import annotations

import argparse
from pathlib import Path

from expirytrack_dagster.explorer.links import DEFAULT_PORT


def cmd_explore(args: argparse.Namespace) -> int:
    """Serve the explorer until Ctrl-C."""
    from expirytrack_dagster.explorer.server import serve
    from expirytrack_dagster.research.api import default_database

    database = Path(args.database) if args.database else default_database()
    if not database.exists():
        # Served anyway (make dev starts it beside the Dagster UI before anything is collected):
        # every page says how to collect, and shows the data once the file exists.
        print(f"no database at {database} yet: pages show data once a partition is collected")
    serve(database, args.port)
    return 0


def add_explore_command(commands: argparse._SubParsersAction) -> None:
    """Register ``expirytrack explore [--port 8050] [--database PATH]``."""
    explore = commands.add_parser(
        "explore",
        help="serve the explorer (option chain, charts, OI analysis, coverage) on 127.0.0.1",
        description="Read-only web pages over the research API: option chain with a time "
        "slider, contract charts, OI analysis, OI tracker and coverage. Never blocks a "
        "collection run (reads a snapshot copy while a writer holds the database).",
    )
    explore.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT})"
    )
    explore.add_argument(
        "--database", default=None, help="DuckDB file (default: the settings' database)"
    )
    explore.set_defaults(func=cmd_explore)
