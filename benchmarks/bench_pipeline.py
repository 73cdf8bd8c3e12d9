"""Collection cost for one realistic partition: NIFTY monthly, ≈200 contracts, 3 months, 1-minute.

Printed (medians over ``--repeat`` where a figure is timed more than once):
- candles per second from HTTP response body to committed DuckDB rows (JSON parse, typed frame,
  landing Parquet, transactional publish: the functions the ``candles`` asset runs), against a
  direct DuckDB bulk insert of the same candles already in memory, and their ratio;
- peak memory of the process that materialises the partition through Dagster;
- bytes per candle on disk (DuckDB, and the landing Parquet), then again after the landing of
  the verified partition is pruned (``expirytrack prune-landing``: only its day records stay);
- API requests per contract against the theoretical minimum for the window setting;
- Dagster's own overhead per partition (three trivial partitioned steps, in-process).

    python -m benchmarks.bench_pipeline [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path
from urllib.parse import quote

import duckdb
import httpx
import pandas as pd

from benchmarks.memory import peak_rss_mb
from expirytrack_dagster.collection import fetch_status
from expirytrack_dagster.collection.answers import clean_answer, merge_days
from expirytrack_dagster.sandbox import Sandbox, SandboxConfig, run_sandbox
from expirytrack_dagster.storage.io_manager import StagedCandles, publish_candles
from expirytrack_dagster.storage.landing import CandleLanding
from expirytrack_dagster.storage.schema import create_tables
from expirytrack_dagster.upstox.models import empty_candles, parse_candles
from expirytrack_dagster.upstox.windows import span_days, split_windows

NIFTY = "NSE_INDEX|Nifty 50"
TODAY = date(2025, 10, 1)
EXPIRY = date(2025, 8, 28)
KEY = "NIFTY_2025-08-28"
WINDOW = (date(2025, 5, 28), EXPIRY)
UNLIMITED = {"per_second": None, "per_minute": None, "per_30_minutes": None}
SPAN = 31
"""The sandbox's default 1-minute span limit: the span the client verifies and fetches with."""


def _materialize(root: str, base_url: str, token: str, ca: str, out: mp.Queue) -> None:
    """In a child process: materialise the partition through Dagster; report time and peak RSS."""
    from dagster import instance_for_test, materialize

    from expirytrack_dagster.assets import candles, contracts, expiries
    from expirytrack_dagster.partitions import expiry_partitions
    from expirytrack_dagster.sandbox_resource import SandboxResource
    from expirytrack_dagster.settings import CollectionSettings
    from expirytrack_dagster.storage.io_manager import ExpiryTrackIOManager

    database = str(Path(root) / "expirytrack.duckdb")
    (Path(root) / "dagster").mkdir(exist_ok=True)
    resources = {
        "upstox": SandboxResource(
            sandbox_url=base_url,
            sandbox_token=token,
            ca_cert_path=ca,
            state_dir=str(Path(root) / "state"),
            per_second=100_000,
            per_minute=1_000_000,
            per_30_minutes=10_000_000,
        ),
        "collection": CollectionSettings(
            database=database, landing_dir=str(Path(root) / "landing")
        ),
        "io_manager": ExpiryTrackIOManager(database=database, schema="main"),
    }
    with instance_for_test(temp_dir=str(Path(root) / "dagster")) as instance:
        instance.add_dynamic_partitions(expiry_partitions.name, [KEY])
        started = time.perf_counter()
        result = materialize(
            [expiries, contracts, candles],
            partition_key=KEY,
            instance=instance,
            resources=resources,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        elapsed = time.perf_counter() - started
    peak_mb = peak_rss_mb()
    out.put({"success": result.success, "seconds": elapsed, "peak_mb": peak_mb})


def _pruned_disk(root: Path, database: Path, rows: int) -> str:
    """Verify and prune the materialised partition's landing; the disk per candle after it."""
    from expirytrack_dagster.ops.prune import prune_partition, verify_partition
    from expirytrack_dagster.settings import CollectionSettings

    collection = CollectionSettings(database=str(database), landing_dir=str(root / "landing"))
    started = time.perf_counter()
    check = verify_partition(collection, KEY)
    if not check.prunable:
        return f"landing not pruned: {check.reason}"
    prune_partition(collection, KEY, check)
    seconds = time.perf_counter() - started
    kept = sum(p.stat().st_size for p in (root / "landing").rglob("*") if p.is_file())
    db_bytes = database.stat().st_size
    return (
        f"with the landing pruned (verified and pruned in {seconds:.1f}s): DuckDB "
        f"{db_bytes / rows:.1f} + day records {kept / rows:.2f} = "
        f"{(db_bytes + kept) / rows:.1f} bytes/candle (goal <= 24)"
    )


def _raw_bodies(sb: Sandbox, contracts: list[dict]) -> dict[str, list[bytes]]:
    """Every candle response body the partition needs, fetched once, untimed."""
    bodies: dict[str, list[bytes]] = {}
    with httpx.Client(
        http2=True,
        verify=sb.ssl_context(),
        base_url=sb.base_url,
        headers={"Authorization": f"Bearer {sb.access_token}"},
    ) as http:
        for contract in contracts:
            key = contract["instrument_key"]
            bodies[key] = [
                http.get(
                    f"/v2/expired-instruments/historical-candle/{quote(key, safe='')}/1minute/"
                    f"{end}/{start}"
                ).content
                for start, end in split_windows(*WINDOW, SPAN, from_end=True)
            ]
    return bodies


def _ours(bodies: dict[str, list[bytes]], root: Path) -> tuple[float, int]:
    """Response bodies → committed rows through the asset's own functions; seconds, rows."""
    landing = CandleLanding(root / "landing", "1minute")
    database = root / "ours.duckdb"
    started = time.perf_counter()
    windows = split_windows(*WINDOW, SPAN, from_end=True)
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    for key, responses in bodies.items():
        answers = [
            clean_answer(
                key,
                parse_candles(json.loads(body)["data"]),
                start,
                end,
                span_days=span_days(start, end),
                verified=True,
                fetched_at=now,
            )
            for body, (start, end) in zip(responses, windows, strict=True)
        ]
        candles, days, _ = merge_days(empty_candles(), {}, answers)
        landing.save(KEY, key, candles, days)
    status, files = fetch_status(landing, KEY, list(bodies), *WINDOW)
    staged = StagedCandles(KEY, tuple(Path(f) for f in files), status, {})
    rows = publish_candles(database, staged).rows
    return time.perf_counter() - started, rows


def _direct(frame: pd.DataFrame, root: Path) -> float:
    """The same candles, already in memory, bulk-inserted straight into DuckDB; seconds."""
    with duckdb.connect(str(root / "direct.duckdb")) as db:
        create_tables(db)
        started = time.perf_counter()
        db.execute("INSERT INTO main.candles BY NAME SELECT * FROM frame")
        return time.perf_counter() - started


def _dagster_overhead(root: Path, runs: int) -> float:
    """Median seconds for a partitioned three-step job whose steps do nothing."""
    from dagster import asset, instance_for_test, materialize

    from expirytrack_dagster.partitions import expiry_partitions

    @asset(partitions_def=expiry_partitions)
    def first() -> None: ...

    @asset(partitions_def=expiry_partitions, deps=[first])
    def second() -> None: ...

    @asset(partitions_def=expiry_partitions, deps=[second])
    def third() -> None: ...

    (root / "overhead").mkdir()
    with instance_for_test(temp_dir=str(root / "overhead")) as instance:
        instance.add_dynamic_partitions(expiry_partitions.name, [KEY])
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            materialize([first, second, third], partition_key=KEY, instance=instance)
            timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory() as tmp,
        run_sandbox(SandboxConfig(today=TODAY, **UNLIMITED)) as sb,
    ):
        root = Path(tmp)
        contracts = sb.market.contracts(NIFTY, EXPIRY)
        print(
            f"partition {KEY}: {len(contracts)} contracts, 1-minute candles {WINDOW[0]} … {WINDOW[1]}"
        )

        ctx = mp.get_context("spawn")
        out: mp.Queue = ctx.Queue()
        child = ctx.Process(
            target=_materialize,
            args=(str(root / "run"), sb.base_url, sb.access_token, str(sb.ca_cert_path), out),
        )
        (root / "run").mkdir()
        child.start()
        run = out.get(timeout=1800)
        child.join()
        stats = sb.stats()
        database = root / "run" / "expirytrack.duckdb"
        with duckdb.connect(str(database)) as db:
            db.execute("CHECKPOINT")
            (rows,) = db.execute("SELECT count(*) FROM candles").fetchone()
        landing_bytes = sum(p.stat().st_size for p in (root / "run" / "landing").rglob("*.parquet"))
        span = SPAN
        minimum = len(contracts) * len(split_windows(*WINDOW, span, from_end=True))
        requests = stats["by_kind"]["candles"]
        print(
            f"  Dagster materialisation (fetch + land + publish): {run['seconds']:.1f}s, "
            f"{rows:,} candles, success={run['success']}"
        )
        print(f"  peak memory of that process: {run['peak_mb']:.0f} MB")
        print(
            f"  on disk: DuckDB {database.stat().st_size / rows:.1f} bytes/candle, "
            f"landing Parquet {landing_bytes / rows:.1f} bytes/candle"
        )
        print(
            f"  total with the landing kept: "
            f"{(database.stat().st_size + landing_bytes) / rows:.1f} bytes/candle"
        )
        print(f"  {_pruned_disk(root / 'run', database, rows)}")
        print(
            f"  API: {requests} candle requests for {len(contracts)} contracts = "
            f"{requests / len(contracts):.2f} per contract; minimum at a {span}-day window "
            f"{minimum / len(contracts):.2f} (ratio {requests / minimum:.3f})"
        )

        bodies = _raw_bodies(sb, contracts)
        ours, direct, counted = [], [], 0
        for i in range(args.repeat):
            seconds, counted = _ours(bodies, root / f"ours{i}")
            ours.append(seconds)
        frame = pd.concat(
            [
                parse_candles(json.loads(b)["data"]).assign(
                    partition_key=KEY, expired_instrument_key=k, interval="1minute"
                )
                for k, responses in bodies.items()
                for b in responses
            ],
            ignore_index=True,
        )
        for i in range(args.repeat):
            (root / f"direct{i}").mkdir()
            direct.append(_direct(frame, root / f"direct{i}"))
        ours_rate, direct_rate = (
            counted / statistics.median(ours),
            len(frame) / statistics.median(direct),
        )
        print(
            f"  response → committed rows: {ours_rate:,.0f} candles/s (parse, land, publish); "
            f"direct DuckDB bulk insert {direct_rate:,.0f} candles/s; ratio {ours_rate / direct_rate:.3f}"
        )
        print(
            f"  Dagster overhead per partition (3 empty steps, in-process): "
            f"{_dagster_overhead(root, args.repeat):.2f}s"
        )


if __name__ == "__main__":
    main()
