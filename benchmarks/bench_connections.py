"""Opening the collection database: a short ``connect()`` block against an instance of its own.

``storage.database.connect`` attaches the file to the process's one DuckDB instance
(``storage.shared_instance``); ``open_connection`` starts an instance of its own, as every
connection did before. Each measurement opens the database (full schema), runs one small query
and closes it, ``--opens`` times; printed are the median over ``--repeat`` of the wall and CPU
milliseconds per open, and the ratio.

    python -m benchmarks.bench_connections [--opens 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from expirytrack_dagster.storage.database import connect, open_connection


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _per_open_ms(open_once: Callable[[], None], opens: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), _cpu_s()
    for _ in range(opens):
        open_once()
    return (
        (time.perf_counter() - wall) / opens * 1000,
        (_cpu_s() - cpu) / opens * 1000,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opens", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_connections_") as tmp:
        database = Path(tmp) / "expirytrack.duckdb"
        with connect(database):
            pass  # the schema

        def shared(read_only: bool) -> Callable[[], None]:
            def once() -> None:
                with connect(database, read_only=read_only) as db:
                    db.execute("SELECT count(*) FROM candles").fetchone()

            return once

        def own(read_only: bool) -> Callable[[], None]:
            def once() -> None:
                with open_connection(database, read_only=read_only) as db:
                    db.execute("SELECT count(*) FROM candles").fetchone()

            return once

        for mode, read_only in (("write", False), ("read-only", True)):
            figures = {}
            for name, make in (("connect (shared instance)", shared), ("own instance", own)):
                runs = [_per_open_ms(make(read_only), args.opens) for _ in range(args.repeat)]
                wall = statistics.median(r[0] for r in runs)
                cpu = statistics.median(r[1] for r in runs)
                figures[name] = wall
                print(f"{mode:9s} {name:26s} {wall:6.2f} ms wall  {cpu:6.2f} ms CPU per open")
            ratio = figures["own instance"] / figures["connect (shared instance)"]
            print(f"{mode:9s} connect is {ratio:.1f}x faster than an instance of its own")


if __name__ == "__main__":
    main()
