"""`make bench`: every benchmark in turn. Figures only; nothing here asserts a speed."""

from benchmarks import (
    bench_accounts,
    bench_connections,
    bench_explorer,
    bench_export,
    bench_lakehouse,
    bench_live,
    bench_pipeline,
    bench_production_profile,
    bench_quality,
    bench_rate_limit,
    bench_reruns,
    bench_research,
    bench_spans,
    bench_writers,
)

if __name__ == "__main__":
    print("== rate-limit utilisation (SQLite and PostgreSQL ledgers) ==")
    bench_rate_limit.main([])
    print("\n== completeness and requests under each range behaviour (verified spans) ==")
    bench_spans.main([])
    print("\n== several Upstox accounts: candles per 30 minutes with 1, 2, 3 accounts ==")
    bench_accounts.main([])
    print("\n== opening the database: the shared instance against one of its own ==")
    bench_connections.main([])
    print("\n== collection of one partition ==")
    bench_pipeline.main([])
    print("\n== re-runs of a complete partition, and disk per candle ==")
    bench_reruns.main([])
    print("\n== quality rules on a 5M-candle partition ==")
    bench_quality.main([])
    print("\n== research: chain and OI tracker on >= 50M candles, the four assets ==")
    bench_research.main([])
    print("\n== exports: >= 20M candles to Parquet and CSV beside a bare DuckDB COPY ==")
    bench_export.main([])
    print("\n== export writers alone: XLSX, AmiBroker, MetaTrader 5 ==")
    bench_writers.main([])
    print("\n== explorer: each page's server time on >= 50M candles ==")
    bench_explorer.main([])
    print("\n== live OI capture: per-minute cost, tracker view on a full day ==")
    bench_live.main([])
    print("\n== production profile: the Dagster instance on SQLite and on PostgreSQL ==")
    bench_production_profile.main([])
    print("\n== shared lakehouse: publish, two writers, readers ==")
    bench_lakehouse.main([])
