"""The XLSX, AmiBroker and MetaTrader 5 writers alone: rows per second and peak memory.

Each writer runs in its own child process on rows DuckDB generates as it goes (ROW_SCHEMA, one
NIFTY expiry, ``--contract-rows`` one-minute bars per contract, exchange-like prices), so the
figures are the writer's own: no selection, no database file. Peak memory is the child's
(``benchmarks.memory``); rows are streamed in 16,384-row batches, so it should not grow with
``--rows``.

    python -m benchmarks.bench_writers [--rows 1000000] [--xlsx-rows 200000] [--contract-rows 7500]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_GENERATED = """
SELECT 'NIFTY' AS underlying, DATE '2025-08-28' AS expiry,
       'NSE_FO|' || (60000 + i // $contract_rows)::VARCHAR || '|28-08-2025' AS instrument_key,
       'NIFTY OPTION' AS trading_symbol,
       CASE WHEN (i // $contract_rows) % 2 = 0 THEN 'CE' ELSE 'PE' END AS instrument_type,
       (22000 + 50 * (i // (2 * $contract_rows)))::DOUBLE AS strike, FALSE AS weekly,
       TIMESTAMPTZ '2025-07-01 09:15:00+05:30' + to_days(((i % $contract_rows) // 375)::INTEGER)
           + to_minutes((i % 375)::BIGINT) AS "timestamp",
       100 + (i % 97) * 0.05 AS open, 101 + (i % 89) * 0.05 AS high,
       99 + (i % 83) * 0.05 AS low, 100 + (i % 79) * 0.05 AS close,
       75 * (i % 400) AS volume, 75 * (1000 + i % 5000) AS open_interest
FROM range($rows) t(i)
"""


class _Generated:
    """Stands in for the selection's row source: DuckDB generates the rows batch by batch."""

    def __init__(self, rows: int, contract_rows: int) -> None:
        import duckdb

        self.db = duckdb.connect()
        self.db.execute("SET TimeZone = 'Asia/Kolkata'")
        self.params = {"rows": rows, "contract_rows": contract_rows}

    def batches(self, rows: int = 16_384, **_: object):
        from expirytrack_dagster.exports.rows import ROW_SCHEMA

        reader = self.db.sql(_GENERATED, params=self.params).to_arrow_reader(16_384)
        for batch in reader:
            yield batch.cast(ROW_SCHEMA)


def _child(format_name: str, rows: int, contract_rows: int) -> None:
    from benchmarks.memory import peak_rss_mb
    from expirytrack_dagster.exports.formats import WriteOptions, writer

    write = writer(format_name)
    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        files = write(
            _Generated(rows, contract_rows),
            Path(directory),
            stem="bench",
            options=WriteOptions(),
            progress=lambda n: None,
        )
        seconds = time.perf_counter() - started
        size = sum(f.path.stat().st_size for f in files)
    result = {"seconds": seconds, "files": len(files), "mb": size / 2**20, "peak": peak_rss_mb()}
    print(json.dumps(result))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--xlsx-rows", type=int, default=200_000)
    parser.add_argument("--contract-rows", type=int, default=7_500)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        name, rows, contract_rows = args.child
        _child(name, int(rows), int(contract_rows))
        return
    print(
        f"{'format':<12} {'rows':>10} {'s':>7} {'rows/s':>10} {'files':>6} {'MB':>7} {'peak MB':>8}"
    )
    for name in ("amibroker", "metatrader5", "xlsx"):
        rows = args.xlsx_rows if name == "xlsx" else args.rows
        child = [sys.executable, "-m", "benchmarks.bench_writers", "--child"]
        out = subprocess.run(
            [*child, name, str(rows), str(args.contract_rows)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(
            f"{name:<12} {rows:>10,} {r['seconds']:>7.2f} {rows / r['seconds']:>10,.0f} "
            f"{r['files']:>6} {r['mb']:>7.1f} {r['peak']:>8.0f}"
        )


if __name__ == "__main__":
    main()
