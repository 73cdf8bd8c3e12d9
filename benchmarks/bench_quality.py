"""Times every quality rule on a synthetic ~5M-row partition (run as a module, not by pytest).

    python -m benchmarks.bench_quality [--weekly] [--dirty]

215 contracts (a future and 107 strikes × CE/PE) × 62 trading days × 375 minutes = 4,998,750
candles. ``--weekly`` drops the future, so near-money strikes come from put-call parity over
every option candle. ``--dirty`` breaks things the way real data does (thinned far strikes,
duplicates, bad prices, holiday candles, failed fetches) so the reporting paths are timed too.
"""

from __future__ import annotations

import argparse
import statistics
import time

from expirytrack_dagster.quality import day_status, run_quality_rules
from expirytrack_dagster_tests.quality.synthetic import dirty, synthetic_partition


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weekly", action="store_true", help="no future in the partition")
    parser.add_argument("--dirty", action="store_true", help="inject realistic defects")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    candles, contracts, fetch, scope = synthetic_partition(with_future=not args.weekly)
    if args.dirty:
        candles, fetch = dirty(candles, contracts, fetch)
    print(f"{len(candles):,} candles, {len(contracts)} contracts, {len(fetch):,} fetch rows")
    run_quality_rules(candles.head(1000), contracts, fetch, scope)  # load the calendar once
    day_times, all_times = [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        days = day_status(candles, contracts, fetch, scope)
        day_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        results = run_quality_rules(candles, contracts, fetch, scope)
        all_times.append(time.perf_counter() - start)
    for result in results:
        print(f"  {result.name:22} {'passed' if result.passed else 'FAILED':6} {result.counts}")
    print(f"day_status alone: {statistics.median(day_times):.2f} s ({len(days):,} rows), median")
    print(
        f"all {len(results)} rules: {statistics.median(all_times):.2f} s median of {args.repeat} "
        f"({len(candles) / statistics.median(all_times):,.0f} candles/s)"
    )


if __name__ == "__main__":
    main()
