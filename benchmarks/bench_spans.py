"""Requests and completeness under every range behaviour an API may have (verified spans).

For each behaviour the sandbox can play — serves the whole window, refuses past 30 days, keeps
the most recent 20 days, keeps the earliest 20 days — one NIFTY monthly and one NIFTY weekly
partition (3 months, 1-minute) are collected from an empty state by the same code the
``candles`` asset runs. Printed per run:

- candle requests per contract, against the fewest the API allows (``ceil(window / limit)``
  windows per contract), and their ratio (goal ≤ 1.05); the requests spent proving the span;
- candles landed against the sandbox's ground truth: lost, extra, duplicated (goal: 0).

    python -m benchmarks.bench_spans [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import date
from pathlib import Path

import pandas as pd

from expirytrack_dagster.collection import ContractToFetch, collect_candles
from expirytrack_dagster.sandbox import SandboxConfig, run_sandbox
from expirytrack_dagster.storage.landing import CandleLanding
from expirytrack_dagster.upstox.client import ClientSettings, UpstoxClient
from expirytrack_dagster.upstox.windows import span_days

NIFTY = "NSE_INDEX|Nifty 50"
TODAY = date(2025, 10, 1)
PARTITIONS = {"monthly": date(2025, 8, 28), "weekly": date(2025, 8, 21)}
BEHAVIOURS = {
    "serves the whole window": (3650, "error"),
    "refuses past 30 days": (30, "error"),
    "keeps the most recent 20 days": (20, "keep_recent"),
    "keeps the earliest 20 days": (20, "keep_earliest"),
}
KEYS = ["expired_instrument_key", "timestamp"]


def _collect(sb, root: Path, expiry: date, todo: list[ContractToFetch], window):
    settings = ClientSettings(ca_cert_path=sb.ca_cert_path, state_dir=root / "state")
    landing = CandleLanding(root / "landing", "1minute")

    async def go():
        async with UpstoxClient(sb.base_url, sb.access_token, settings) as client:
            return await collect_candles(
                client, landing, f"NIFTY_{expiry}", todo, *window, underlying_key=NIFTY
            )

    started = time.perf_counter()
    report = asyncio.run(go())
    return report, landing, time.perf_counter() - started


def _landed(landing: CandleLanding, partition: str) -> pd.DataFrame:
    frames = [pd.read_parquet(f) for f in landing.files(partition)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=KEYS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="monthly partition only")
    args = parser.parse_args(argv)
    partitions = {"monthly": PARTITIONS["monthly"]} if args.quick else PARTITIONS
    config = SandboxConfig(
        seed=7, today=TODAY, per_second=None, per_minute=None, per_30_minutes=None
    )
    with run_sandbox(config) as sb:
        truths = {}
        for name, expiry in partitions.items():
            window = ((pd.Timestamp(expiry) - pd.DateOffset(months=3)).date(), expiry)
            truths[name] = (window, sb.truth_candles("NIFTY", expiry, "1minute", *window))
        for behaviour, (limit, mode) in BEHAVIOURS.items():
            sb.set_range(limit, mode)
            for name, expiry in partitions.items():
                window, truth = truths[name]
                todo = [
                    ContractToFetch(c["instrument_key"], c["instrument_type"])
                    for c in sb.market.contracts(NIFTY, expiry)
                ]
                with tempfile.TemporaryDirectory() as tmp:
                    report, landing, seconds = _collect(sb, Path(tmp), expiry, todo, window)
                    got = _landed(landing, f"NIFTY_{expiry}")
                fewest = len(todo) * -(-span_days(*window) // min(limit, span_days(*window)))
                joined = got[KEYS].merge(truth[KEYS], how="outer", indicator=True)
                lost = int((joined["_merge"] == "right_only").sum())
                extra = int((joined["_merge"] == "left_only").sum())
                duplicated = int(got.duplicated(KEYS).sum())
                print(
                    f"  {behaviour:30} {name:7} {len(todo):3} contracts: "
                    f"{report.candle_requests / len(todo):.2f} candle requests/contract, fewest "
                    f"allowed {fewest / len(todo):.2f} (ratio {report.candle_requests / fewest:.3f}); "
                    f"span {report.span_days} d verified={report.span_verified}, "
                    f"{report.probe_requests} requests proving it; candles {len(got):,} of "
                    f"{len(truth):,} true: lost {lost}, extra {extra}, duplicated {duplicated}; "
                    f"{seconds:.0f}s"
                )


if __name__ == "__main__":
    main()
