"""The research layer's speed: chain with greeks and OI tracker on ≥ 50 M candles; the four assets.

Builds, in a temporary directory, the sandbox's NIFTY 2025-08-28 partition (≈200 contracts, three
months of 1-minute candles, ≈3 M rows: expiries and contracts collected through Dagster, candles
straight from the sandbox's model) and replicates it under other partition keys (``NIFTY-R1``…,
DuckDB ``INSERT … SELECT``) until the candles table holds at least ``--candles`` rows. Then prints,
median of ``--repeat`` runs each:

- ``research.option_chain`` (chain with IV and greeks at a minute) beside the same chain's data
  written by hand as one SQL query (last price, age, session volume and OI per contract; no
  greeks), both over one open read-only connection; goal < 50 ms;
- ``research.oi_tracker`` (OI change over 3/5/10/15/30 minutes, ATM ± 3 strikes) beside hand SQL
  (OI as of ``at`` and as of each window start, per contract of those strikes); goal < 50 ms;
- the four assets on the original partition, in a child process: ``chain_research`` (read the
  partition, build option_greeks, option_chain_daily and chain_metrics, write them in one
  transaction) and ``continuous_futures`` (read every future, stitch, write), wall time and the
  child's peak memory; goal < 10 s and < 1 GB.

    python -m benchmarks.bench_research [--candles 50000000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd

from benchmarks.memory import peak_rss_mb

EXPIRY = date(2025, 8, 28)
KEY = "NIFTY_2025-08-28"
AT = "2025-08-14 10:30"
TODAY = date(2025, 10, 1)

_CHAIN_SQL = """
    SELECT k.strike_price, k.instrument_type, max(c."timestamp") AS last_trade,
           arg_max(c.close, c."timestamp") AS ltp,
           date_diff('minute', max(c."timestamp"), $at::TIMESTAMPTZ) AS age_minutes,
           sum(c.volume) AS session_volume, arg_max(c.open_interest, c."timestamp") AS oi
    FROM candles c JOIN contracts k USING (partition_key, expired_instrument_key)
    WHERE c.partition_key = $key AND c."timestamp" >= $open::TIMESTAMPTZ
      AND c."timestamp" <= $at::TIMESTAMPTZ AND k.instrument_type IN ('CE', 'PE')
    GROUP BY ALL ORDER BY k.strike_price, k.instrument_type
"""

_TRACKER_SQL = """
    SELECT k.strike_price, k.instrument_type,
           arg_max(c.open_interest, c."timestamp") AS oi,
           {windows}
    FROM candles c JOIN contracts k USING (partition_key, expired_instrument_key)
    WHERE c.partition_key = $key AND c."timestamp" >= $open::TIMESTAMPTZ
      AND c."timestamp" <= $at::TIMESTAMPTZ AND k.strike_price IN (SELECT unnest($strikes))
      AND k.instrument_type IN ('CE', 'PE')
    GROUP BY ALL ORDER BY k.strike_price, k.instrument_type
"""
_WINDOW = (
    'oi - arg_max(c.open_interest, c."timestamp") FILTER (WHERE c."timestamp" <= '
    "$at::TIMESTAMPTZ - INTERVAL {w} MINUTE) AS oi_chg_{w}m"
)


def build_database(root: Path, target_candles: int) -> Path:
    """The NIFTY partition, then copies of it until the candles table holds ``target_candles``."""
    from expirytrack_dagster.assets import contracts, expiries
    from expirytrack_dagster.storage.database import connect
    from expirytrack_dagster_tests.pipeline import pipeline, sandbox_config

    with pipeline(root, sandbox_config(seed=21, today=TODAY), lookback_months=3) as p:
        key = p.partition("NIFTY", EXPIRY)
        p.materialize(key, selection=[expiries, contracts])
        start = p.collection.lookback_start(EXPIRY)
        truth = p.sandbox.market.truth_candles("NIFTY", EXPIRY, from_date=start, to_date=EXPIRY)
    truth.insert(0, "partition_key", KEY)
    truth.insert(2, "interval", "1minute")
    database = p.database
    with connect(database) as db:
        db.register("truth", truth)
        db.execute("INSERT INTO candles BY NAME SELECT * FROM truth")
        db.unregister("truth")
        rows = db.execute("SELECT count(*) FROM candles").fetchall()[0][0]
        copies = -(-target_candles // rows) - 1
        for i in range(1, copies + 1):
            other = f"NIFTY-R{i}_{EXPIRY.isoformat()}"
            for table in ("expiries", "contracts", "candles"):
                replace = f"'{other}' AS partition_key"
                if table != "candles":
                    replace += f", 'NIFTY-R{i}' AS underlying_symbol"
                db.execute(
                    f"INSERT INTO {table} BY NAME SELECT * REPLACE ({replace}) FROM {table} "
                    f"WHERE partition_key = '{KEY}'"
                )
        db.execute("CHECKPOINT")
    return database


def median_ms(call: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Median wall time of ``call`` in milliseconds (after one warm-up call), and its result."""
    result = call()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def bench_queries(database: Path, repeat: int) -> None:
    from expirytrack_dagster import research
    from expirytrack_dagster.research.asof import session_at, to_ist

    at = to_ist(AT)
    session = session_at(at)
    params = {"key": KEY, "at": at.isoformat(), "open": session.open.isoformat()}
    with research.open_database(database) as db:
        rows = db.execute("SELECT count(*) FROM candles").fetchall()[0][0]
        print(f"{rows:,} candles in the database; questions about {KEY} at {AT} IST")
        api, chain = median_ms(
            lambda: research.option_chain("NIFTY", EXPIRY, AT, database=db), repeat
        )
        hand = db.cursor()  # its own cursor: the API's connection keeps no result open for us
        sql, by_hand = median_ms(lambda: hand.sql(_CHAIN_SQL, params=params).df(), repeat)
        print(
            f"  option chain with greeks: research.option_chain {api:6.1f} ms | hand SQL (no "
            f"greeks) {sql:6.1f} ms | ratio {api / sql:4.1f}x | {len(chain)} strikes, "
            f"{len(by_hand)} legs   (goal < 50 ms)"
        )
        api, tracker = median_ms(
            lambda: research.oi_tracker("NIFTY", EXPIRY, AT, database=db), repeat
        )
        windows = ", ".join(_WINDOW.format(w=w) for w in (3, 5, 10, 15, 30))
        tracker_sql = _TRACKER_SQL.format(windows=windows)
        strikes = sorted(tracker["strike"].unique().tolist())
        sql, _ = median_ms(
            lambda: hand.sql(tracker_sql, params={**params, "strikes": strikes}).df(), repeat
        )
        print(
            f"  OI tracker:               research.oi_tracker   {api:6.1f} ms | hand SQL        "
            f"  {sql:6.1f} ms | ratio {api / sql:4.1f}x | {len(tracker)} contracts   "
            "(goal < 50 ms)"
        )


def asset_step(database: str) -> None:
    """In a child process: the work of chain_research and continuous_futures; prints JSON."""
    from expirytrack_dagster.assets.research import load_futures
    from expirytrack_dagster.calendar import session_for
    from expirytrack_dagster.research.chain_tables import build_chain_tables
    from expirytrack_dagster.research.continuous import RollRule, stitch
    from expirytrack_dagster.research.partition_grid import load_partition
    from expirytrack_dagster.storage.database import connect
    from expirytrack_dagster.storage.io_manager import insert_frame, transaction

    session_for(EXPIRY)  # the exchange calendar loads once per process (a few seconds): not ours
    started = time.perf_counter()
    with connect(database, read_only=True) as db:
        candles = load_partition(db, KEY)
    loaded = time.perf_counter()
    tables = build_chain_tables(candles, rate=0.065, bucket_minutes=15, max_age_minutes=5)
    count = len(candles)
    del candles  # as the asset does: freed before the write
    built = time.perf_counter()
    with transaction(database) as db:
        for name in ("option_greeks", "option_chain_daily", "chain_metrics"):
            db.execute(f"DELETE FROM main.{name} WHERE partition_key = ?", [KEY])
            insert_frame(db, f"main.{name}", getattr(tables, name))
    written = time.perf_counter()
    chain_peak = peak_rss_mb()
    with connect(database, read_only=True) as db:
        keys = [row[0] for row in db.execute("SELECT partition_key FROM expiries").fetchall()]
        futures = load_futures(db, keys)
    series = stitch(futures, RollRule())
    with transaction(database) as db:
        db.execute("DELETE FROM main.continuous_futures")
        insert_frame(db, "main.continuous_futures", series)
    finished = time.perf_counter()
    print(
        json.dumps(
            {
                "candles": count,
                "load_s": loaded - started,
                "build_s": built - loaded,
                "write_s": written - built,
                "continuous_s": finished - written,
                "continuous_rows": len(series),
                "greeks_rows": len(tables.option_greeks),
                "total_s": finished - started,
                "chain_peak_mb": chain_peak,
                "peak_mb": peak_rss_mb(),
            }
        )
    )


def bench_assets(database: Path, repeat: int) -> None:
    runs = []
    for _ in range(max(1, repeat // 2)):
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_research", "--asset-step", str(database)],
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    total = statistics.median(r["total_s"] for r in runs)
    peak = max(r["peak_mb"] for r in runs)
    chain_peak = max(r["chain_peak_mb"] for r in runs)
    r = runs[-1]
    print(
        f"  four assets on {KEY} ({r['candles']:,} candles): {total:.1f} s median of {len(runs)} "
        f"(read {r['load_s']:.1f} s, build {r['build_s']:.1f} s, write {r['write_s']:.1f} s, "
        f"continuous_futures {r['continuous_s']:.1f} s), peak {peak:.0f} MB "
        f"({chain_peak:.0f} MB after the three chain tables)   "
        "(goal < 10 s, < 1 GB)"
    )
    print(f"    {r['greeks_rows']:,} option_greeks rows, {r['continuous_rows']:,} continuous rows")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=50_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--asset-step", metavar="DATABASE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.asset_step:
        asset_step(args.asset_step)
        return
    with tempfile.TemporaryDirectory(prefix="bench_research_") as tmp:
        started = time.perf_counter()
        database = build_database(Path(tmp), args.candles)
        size = database.stat().st_size / 1e9
        print(f"built in {time.perf_counter() - started:.0f} s ({size:.1f} GB)")
        bench_queries(database, args.repeat)
        bench_assets(database, args.repeat)


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    main()
