"""Exports at scale: ≥ 20 M candles to Parquet and to CSV, beside a bare DuckDB COPY of the same rows.

Builds the research bench's database (the sandbox's NIFTY 2025-08-28 partition replicated under
other underlyings, ``benchmarks.bench_research.build_database``) with at least ``--candles``
rows, then runs each of these in its own child process (so its peak memory is its own), median
of ``--repeat``:

- ``expirytrack_dagster.exports.run.export`` of every candle to Parquet (hive-partitioned,
  zstd) and to one CSV file (ISO timestamps with +05:30);
- a bare DuckDB ``COPY`` of the same rows (same order, same columns, the timestamp formatted
  the same way for CSV) to one Parquet file / one CSV file, in one statement, on a read-only
  connection with the project's default DuckDB memory limit (4 GB).

Prints rows/s for each, the ratio export ÷ bare (goal ≥ 0.8) and the export's peak memory
(goal < 500 MB).

    python -m benchmarks.bench_export [--candles 20000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.memory import peak_rss_mb


def _selection(database: Path):
    import duckdb

    from expirytrack_dagster.exports.selection import Selection

    with duckdb.connect(str(database), read_only=True) as db:
        names = [
            r[0] for r in db.execute("SELECT DISTINCT underlying_symbol FROM expiries").fetchall()
        ]
    return Selection(tuple(sorted(names)))


def step(kind: str, database: Path, out: Path) -> dict:
    """In a child process: one export or one bare COPY; its seconds, rows and peak memory."""
    from expirytrack_dagster.exports.run import export

    selection = _selection(database)
    started = time.perf_counter()
    if kind.startswith("export-"):
        result = export(selection, kind.removeprefix("export-"), out, database=database)
        rows = result.manifest.rows
    else:
        from expirytrack_dagster.exports.selection import register, resolve, rows_query
        from expirytrack_dagster.storage.database import open_connection

        db = open_connection(database, read_only=True)  # DuckDB as a user opens it
        db.execute("SET TimeZone = 'Asia/Kolkata'")
        resolved = resolve(db, selection)
        register(db, resolved)
        query, params = rows_query(resolved)
        params = {**params, "first_ordinal": 0, "last_ordinal": len(resolved.contracts)}
        # The export runs this once per run of contracts; bare DuckDB sorts every row in one
        # statement.
        query = query.replace("c.partition_key = $partition_key AND ", "")
        out.mkdir(parents=True)
        if kind == "copy-parquet":
            options = "FORMAT parquet, COMPRESSION zstd"
            target, columns = out / "all.parquet", "*"
        else:
            options = "FORMAT csv, HEADER"
            target = out / "all.csv"
            columns = (
                "* REPLACE (strftime(timezone('Asia/Kolkata', \"timestamp\"), "
                "'%Y-%m-%dT%H:%M:%S') || '+05:30' AS \"timestamp\")"
            )
        db.execute(f"COPY (SELECT {columns} FROM ({query})) TO '{target}' ({options})", params)
        ((rows,),) = db.execute(f"SELECT count(*) FROM ({query})", params).fetchall()
        db.close()
    return {"seconds": time.perf_counter() - started, "rows": rows, "peak_mb": peak_rss_mb()}


def _child(kind: str, database: Path, out: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_export", "--step", kind, str(database), str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=20_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--step", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step:
        kind, database, out = args.step
        print(json.dumps(step(kind, Path(database), Path(out))))
        return
    from benchmarks.bench_research import build_database

    with tempfile.TemporaryDirectory(prefix="bench_export_") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        database = build_database(root / "db", args.candles)
        print(f"built in {time.perf_counter() - started:.0f} s")
        results: dict[str, list[dict]] = {}
        for run in range(args.repeat):
            for kind in ("copy-parquet", "export-parquet", "copy-csv", "export-csv"):
                out = root / f"{kind}-{run}"
                results.setdefault(kind, []).append(_child(kind, database, out))
                subprocess.run(["rm", "-rf", str(out)], check=True)
        rows = results["export-parquet"][0]["rows"]
        print(f"{rows:,} candles exported, median of {args.repeat}:")
        for fmt in ("parquet", "csv"):
            bare = statistics.median(r["seconds"] for r in results[f"copy-{fmt}"])
            ours = statistics.median(r["seconds"] for r in results[f"export-{fmt}"])
            peak = max(r["peak_mb"] for r in results[f"export-{fmt}"])
            bare_peak = max(r["peak_mb"] for r in results[f"copy-{fmt}"])
            print(
                f"  {fmt:8} export {rows / ours / 1e6:5.2f} M rows/s ({ours:.1f} s) | bare COPY "
                f"{rows / bare / 1e6:5.2f} M rows/s ({bare:.1f} s) | ratio {bare / ours:.2f} "
                f"(goal >= 0.8) | peak {peak:.0f} MB (goal < 500; bare COPY {bare_peak:.0f} MB)"
            )


if __name__ == "__main__":
    main()
