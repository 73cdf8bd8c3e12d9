"""The IO manager writes a partition in one transaction: all of it, or nothing and the old rows kept."""

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from dagster import AssetExecutionContext, DagsterInstance, asset, materialize

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.partitions import expiry_partitions
from expirytrack_dagster.storage.io_manager import ExpiryTrackIOManager, StagedCandles
from expirytrack_dagster.storage.landing import CandleLanding, DayRecord

KEYS = ["NIFTY_2025-08-28", "NIFTY_2025-09-02"]


def candles_frame(start: str, n: int, price: float) -> pd.DataFrame:
    stamps = pd.date_range(start, periods=n, freq="1min", tz=IST)
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


def status_frame(partition_key: str, contract: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "partition_key": [partition_key],
            "expired_instrument_key": [contract],
            "trading_date": [date(2025, 8, 1)],
            "status": ["complete"],
            "candle_count": [1],
            "error": [None],
            "fetched_at": [pd.Timestamp(datetime(2025, 9, 1, tzinfo=IST))],
        }
    )


def staged_asset(files: Callable[[str], list[Path]]):
    @asset(
        name="candles",
        partitions_def=expiry_partitions,
        metadata={"partition_expr": "partition_key"},
    )
    def candles_asset(context: AssetExecutionContext) -> StagedCandles:
        key = context.partition_key
        return StagedCandles(key, tuple(files(key)), status_frame(key, "NSE_FO|1|28-08-2025"), {})

    return candles_asset


@pytest.fixture
def setup(tmp_path: Path):
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(expiry_partitions.name, KEYS)
    landing = CandleLanding(tmp_path / "landing", "1minute")
    for i, key in enumerate(KEYS):
        for j, contract in enumerate(["NSE_FO|1|28-08-2025", "NSE_FO|2|28-08-2025"]):
            landing.save(
                key,
                contract,
                candles_frame("2025-08-01 09:15", 50 + j, 100.0 * (i + 1)),
                {date(2025, 8, 1): DayRecord("complete", 28, None, datetime.now(UTC))},
            )
    io_manager = ExpiryTrackIOManager(database=str(tmp_path / "db.duckdb"), schema="main")
    return instance, landing, io_manager, tmp_path / "db.duckdb"


def counts(database: Path) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as db:
        return db.execute(
            "SELECT partition_key, count(*), sum(close) FROM candles GROUP BY 1 ORDER BY 1"
        ).fetchall()


def test_partitions_are_written_and_replaced_independently(setup) -> None:
    instance, landing, io_manager, database = setup
    files = lambda key: sorted(landing.partition_dir(key).glob("*.parquet"))  # noqa: E731
    for key in KEYS:
        assert materialize(
            [staged_asset(files)],
            partition_key=key,
            instance=instance,
            resources={"io_manager": io_manager},
        ).success
    assert counts(database) == [(KEYS[0], 101, 101 * 100.0), (KEYS[1], 101, 101 * 200.0)]
    # Re-publishing one partition replaces exactly its rows.
    assert materialize(
        [staged_asset(files)],
        partition_key=KEYS[0],
        instance=instance,
        resources={"io_manager": io_manager},
    ).success
    assert counts(database) == [(KEYS[0], 101, 101 * 100.0), (KEYS[1], 101, 101 * 200.0)]
    with duckdb.connect(str(database), read_only=True) as db:
        keys = db.execute(
            "SELECT expired_instrument_key FROM candles WHERE partition_key = ?", [KEYS[0]]
        ).fetchall()
        statuses = db.execute(
            "SELECT partition_key, count(*) FROM candle_fetch_status GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert [k for (k,) in keys] == sorted(k for (k,) in keys)  # inserted sorted for zone maps
    assert statuses == [(KEYS[0], 1), (KEYS[1], 1)]


def test_a_write_failing_midway_leaves_the_previous_partition_intact(setup) -> None:
    instance, landing, io_manager, database = setup
    good = lambda key: sorted(landing.partition_dir(key).glob("*.parquet"))  # noqa: E731
    for key in KEYS:
        materialize(
            [staged_asset(good)],
            partition_key=key,
            instance=instance,
            resources={"io_manager": io_manager},
        )
    before = counts(database)

    broken = landing.partition_dir(KEYS[0]) / "broken.parquet"
    broken.write_bytes(b"PAR1 this is not a parquet file PAR1")
    # The DELETE of the old rows runs first inside the transaction; the INSERT then fails.
    result = materialize(
        [staged_asset(lambda key: [*good(key), broken])],
        partition_key=KEYS[0],
        instance=instance,
        resources={"io_manager": io_manager},
        raise_on_error=False,
    )
    assert not result.success
    assert counts(database) == before
    with duckdb.connect(str(database), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM candle_fetch_status").fetchone() == (2,)


def test_frames_insert_by_name_and_reject_unknown_columns(tmp_path: Path) -> None:
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(expiry_partitions.name, KEYS)
    io_manager = ExpiryTrackIOManager(database=str(tmp_path / "db.duckdb"), schema="main")
    row = {
        "checked_at": pd.Timestamp(datetime(2025, 9, 1, tzinfo=IST)),  # deliberately out of order
        "partition_key": KEYS[0],
        "underlying_symbol": "NIFTY",
        "underlying_key": "NSE_INDEX|Nifty 50",
        "expiry": date(2025, 8, 28),
        "is_monthly": True,
        "data_source": "sandbox",
    }

    def expiries_asset(extra: dict):
        @asset(
            name="expiries",
            partitions_def=expiry_partitions,
            metadata={"partition_expr": "partition_key"},
        )
        def expiries() -> pd.DataFrame:
            return pd.DataFrame([{**row, **extra}])

        return expiries

    assert materialize(
        [expiries_asset({})],
        partition_key=KEYS[0],
        instance=instance,
        resources={"io_manager": io_manager},
    ).success
    bad = materialize(
        [expiries_asset({"surprise": 1})],
        partition_key=KEYS[0],
        instance=instance,
        resources={"io_manager": io_manager},
        raise_on_error=False,
    )
    assert not bad.success
    with duckdb.connect(str(tmp_path / "db.duckdb"), read_only=True) as db:
        assert db.execute(
            "SELECT underlying_symbol, expiry, is_monthly FROM expiries"
        ).fetchall() == [("NIFTY", date(2025, 8, 28), True)]
