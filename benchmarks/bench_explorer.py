"""The explorer's speed: each page's server-side data time on a >= 50 M-candle database.

Builds the research benchmark's database (``benchmarks.bench_research.build_database``: the
sandbox's NIFTY 2025-08-28 partition, three months of 1-minute candles, replicated until the
candles table holds ``--candles`` rows), then prints the median of ``--repeat`` runs (after one
warm-up) of each page's data function over one read-only connection, and of the whole page
(open the file read-only, data, template) fetched over HTTP from the served explorer; goal
< 300 ms each. The 1-minute chart is the partition's ATM call over its three months.

    python -m benchmarks.bench_explorer [--candles 50000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from benchmarks.bench_research import AT, EXPIRY, KEY, build_database, median_ms
from benchmarks.memory import peak_rss_mb
from expirytrack_dagster import research
from expirytrack_dagster.explorer import data
from expirytrack_dagster.explorer.server import running


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=50_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_explorer_") as tmp:
        started = time.perf_counter()
        database = build_database(Path(tmp), args.candles)
        with research.open_database(database) as db:
            (rows,) = db.execute("SELECT count(*) FROM candles").fetchone()
        print(f"built {rows / 1e6:.1f} M candles in {time.perf_counter() - started:.0f} s")
        expiry = EXPIRY.isoformat()
        with research.open_database(database) as db:
            chain = research.option_chain("NIFTY", EXPIRY, AT, database=db)
            atm = chain.attrs["atm_strike"]
            call = next(
                c["key"]
                for c in data.contracts_of(db, KEY)
                if c["type"] == "CE" and f" {atm:.0f} " in c["symbol"]
            )
            cache = data.LifeCache(database)  # what the served explorer keeps between requests
            calls = {
                "chain": lambda: data.chain_page(db, "NIFTY", expiry, AT),
                "chart 1minute": lambda: data.chart_page(db, call, "1minute", overlay=True),
                "chart day": lambda: data.chart_page(db, call, "day"),
                "oi analysis": lambda: data.oi_page(db, "NIFTY", expiry, AT),
                "oi analysis, life cached": lambda: data.oi_page(
                    db, "NIFTY", expiry, AT, history=cache
                ),
                "oi tracker": lambda: data.tracker_page(db, "NIFTY", expiry, AT),
                "coverage": lambda: data.coverage_page(db),
            }
            print(f"{'page data (one open connection)':34} median ms")
            for name, run in calls.items():
                ms, result = median_ms(run, args.repeat)
                extra = f"  ({result['count']} bars)" if "count" in result else ""
                print(f"  {name:32} {ms:8.1f}{extra}")
        at = urllib.parse.quote(AT)
        paths = {
            "chain": f"/chain?underlying=NIFTY&expiry={expiry}&at={at}",
            "chart 1minute": f"/chart?contract={urllib.parse.quote(call)}&interval=1minute&overlay=1",
            "oi analysis": f"/oi?underlying=NIFTY&expiry={expiry}&at={at}",
            "oi tracker": f"/tracker?underlying=NIFTY&expiry={expiry}&at={at}",
            "coverage": "/coverage",
        }
        print(f"{'whole page over HTTP (opens the file)':34} median ms (after one warm-up)")
        with running(database) as url:
            for name, path in paths.items():

                def get(path: str = path) -> int:
                    with urllib.request.urlopen(url + path, timeout=60) as response:
                        return len(response.read())

                ms, size = median_ms(get, args.repeat)
                print(f"  {name:32} {ms:8.1f}  ({size / 1024:.0f} KiB)")
        print(f"peak memory of this process: {peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
