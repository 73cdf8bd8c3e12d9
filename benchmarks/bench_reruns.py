"""Re-running a complete partition, and disk per candle: NIFTY monthly, ≈200 contracts, 3 months.

Printed:
- the first collection (Dagster, in-process): seconds, candles;
- disk per candle after it: DuckDB file, landing zone as per-contract files;
- a first re-run with landing compaction on: seconds, candle requests, published or not, and the
  landing zone compacted to one zstd file;
- ``--reruns`` more re-runs: seconds each, candle requests, database size change;
- bytes per candle, DuckDB + landing, against the 24-byte goal.

    python -m benchmarks.bench_reruns [--reruns 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

from dagster import instance_for_test, materialize

from expirytrack_dagster.assets import candles, contracts, expiries
from expirytrack_dagster.partitions import expiry_partitions
from expirytrack_dagster.sandbox import SandboxConfig, run_sandbox
from expirytrack_dagster.sandbox_resource import SandboxResource
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster.storage.io_manager import ExpiryTrackIOManager

TODAY = date(2025, 10, 1)
KEY = "NIFTY_2025-08-28"
UNLIMITED = {"per_second": None, "per_minute": None, "per_30_minutes": None}


def _landing_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "landing").rglob("*.parquet"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reruns", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "dagster").mkdir()
        _bench(Path(tmp), args.reruns)


def _bench(root: Path, reruns: int) -> None:
    with (
        run_sandbox(SandboxConfig(seed=3, today=TODAY, **UNLIMITED)) as sb,
        instance_for_test(temp_dir=str(root / "dagster")) as instance,
    ):
        database = root / "expirytrack.duckdb"
        instance.add_dynamic_partitions(expiry_partitions.name, [KEY])
        upstox = SandboxResource(
            sandbox_url=sb.base_url,
            sandbox_token=sb.access_token,
            ca_cert_path=str(sb.ca_cert_path),
            state_dir=str(root / "state"),
            per_second=100_000,
            per_minute=1_000_000,
            per_30_minutes=10_000_000,
        )
        io_manager = ExpiryTrackIOManager(
            database=str(database),
            schema="main",
            source="sandbox",
            landing_dir=str(root / "landing"),
        )

        def run(compact: bool) -> tuple[float, int, str, int]:
            collection = CollectionSettings(
                database=str(database), landing_dir=str(root / "landing"), compact_landing=compact
            )
            before = int(sb.stats()["by_kind"].get("candles", 0))
            started = time.perf_counter()
            result = materialize(
                [expiries, contracts, candles],
                partition_key=KEY,
                instance=instance,
                resources={"upstox": upstox, "collection": collection, "io_manager": io_manager},
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            )
            seconds = time.perf_counter() - started
            assert result.success
            meta = result.asset_materializations_for_node("candles")[0].metadata
            requests = int(sb.stats()["by_kind"].get("candles", 0)) - before
            return seconds, requests, str(meta["published"].value), meta["dagster/row_count"].value

        seconds, requests, published, rows = run(compact=False)
        db_bytes, landing = database.stat().st_size, _landing_bytes(root)
        print(f"first collection      : {seconds:.1f} s, {rows:,} candles, {requests} requests")
        print(
            f"bytes per candle      : DuckDB {db_bytes / rows:.1f}, landing per-contract "
            f"{landing / rows:.1f}, total {(db_bytes + landing) / rows:.1f}"
        )
        seconds, requests, published, _ = run(compact=True)
        compacted = _landing_bytes(root)
        print(
            f"re-run, compacting    : {seconds:.1f} s, {requests} candle requests, {published}; "
            f"landing {landing / 1e6:.1f} MB → {compacted / 1e6:.1f} MB"
        )
        sizes, times = [], []
        for _ in range(reruns):
            seconds, requests, published, _ = run(compact=True)
            times.append(seconds)
            sizes.append(database.stat().st_size)
            assert requests == 0, requests
        drift = max(abs(s - db_bytes) for s in sizes) / db_bytes * 100
        print(
            f"{reruns} re-runs            : {', '.join(f'{t:.1f}' for t in times)} s; 0 candle "
            f"requests; database {db_bytes / 1e6:.1f} MB, largest change {drift:.2f} %"
        )
        total = (sizes[-1] + compacted) / rows
        print(
            f"bytes per candle      : DuckDB {sizes[-1] / rows:.1f} + landing {compacted / rows:.1f}"
            f" = {total:.1f} (goal ≤ 24)"
        )


if __name__ == "__main__":
    main()
