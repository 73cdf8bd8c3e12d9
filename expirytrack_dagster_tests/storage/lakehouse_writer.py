"""A collecting machine for the lakehouse tests, run as its own process.

``python -m expirytrack_dagster_tests.storage.lakehouse_writer ROOT LAKE_PATH CATALOG_URL PRICE
KEY...`` lands candles for each partition ``KEY`` under ``ROOT`` (its own DuckDB file and landing
zone, as another machine would have) and publishes them through the IO layer
(``publish_candles``) with the lakehouse attached. ``--rounds N`` publishes every partition N
times, round r at price ``PRICE + r`` (so a later round replaces an earlier one).
"""

import argparse
from datetime import UTC, date, datetime
from pathlib import Path

from expirytrack_dagster.startup_gc import long_lived_objects

with long_lived_objects():  # as a run's process starts (see startup_gc)
    import pandas as pd

    from expirytrack_dagster.calendar import IST
    from expirytrack_dagster.storage.io_manager import StagedCandles, publish_candles
    from expirytrack_dagster.storage.lakehouse import Lakehouse, attach
    from expirytrack_dagster.storage.landing import CandleLanding, DayRecord

CONTRACTS = ("NSE_FO|1|28-08-2025", "NSE_FO|2|28-08-2025")
ROWS = 375
"""Candles per contract: one 1-minute session."""


def candles_frame(price: float, rows: int = ROWS) -> pd.DataFrame:
    """One session of 1-minute candles at ``price``."""
    stamps = pd.date_range("2025-08-01 09:15", periods=rows, freq="1min", tz=IST)
    return pd.DataFrame(
        {
            "timestamp": stamps,
            "open": price,
            "high": price + 1,
            "low": price - 1,
            "close": price,
            "volume": 75,
            "open_interest": 1500,
        }
    )


def status_frame(key: str, rows: int = ROWS) -> pd.DataFrame:
    """The fetch status of the partition's contracts: one complete day each."""
    return pd.DataFrame(
        {
            "partition_key": [key] * len(CONTRACTS),
            "expired_instrument_key": list(CONTRACTS),
            "trading_date": [date(2025, 8, 1)] * len(CONTRACTS),
            "status": ["complete"] * len(CONTRACTS),
            "candle_count": [rows] * len(CONTRACTS),
            "error": [None] * len(CONTRACTS),
            "fetched_at": [pd.Timestamp(datetime.now(UTC))] * len(CONTRACTS),
        }
    )


def publish(root: Path, key: str, price: float, rows: int = ROWS, source: str | None = None) -> int:
    """Land ``key``'s candles at ``price`` under ``root`` and publish them (marking ``source``
    when given); return the rows."""
    landing = CandleLanding(root / "landing", "1minute")
    for contract in CONTRACTS:
        landing.save(
            key,
            contract,
            candles_frame(price, rows),
            {date(2025, 8, 1): DayRecord("complete", rows, None, datetime.now(UTC))},
        )
    files = tuple(sorted(landing.partition_dir(key).glob("*.parquet")))
    staged = StagedCandles(key, files, status_frame(key, rows))
    return publish_candles(root / "expirytrack.duckdb", staged, source=source).rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("lake_path", type=Path)
    parser.add_argument("catalog_url")
    parser.add_argument("price", type=float)
    parser.add_argument("keys", nargs="+")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    attach(args.root / "expirytrack.duckdb", Lakehouse(args.lake_path, args.catalog_url))
    for round_ in range(args.rounds):
        for key in args.keys:
            publish(args.root, key, args.price + round_)
    print("published", flush=True)


if __name__ == "__main__":
    main()
