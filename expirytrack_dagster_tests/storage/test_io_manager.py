"""Every write is one transaction: all of a partition, or nothing and the old rows kept.

The candle publish replaces ``candles`` and ``candle_fetch_status`` together; the IO manager
replaces a DataFrame asset's partition. An error or a killed writer leaves what was stored.
"""

import signal
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from dagster import AssetExecutionContext, DagsterInstance, asset, materialize

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.partitions import expiry_partitions
from expirytrack_dagster.storage.io_manager import (
    PUBLISHED_NEW,
    PUBLISHED_REPLACED,
    PUBLISHED_UNCHANGED,
    ExpiryTrackIOManager,
    Published,
    StagedCandles,
    publish_candles,
    publish_partition,
)
from expirytrack_dagster.storage.landing import CandleLanding, DayRecord
from expirytrack_dagster.storage.stores import StoreError

KEYS = ["NIFTY_2025-08-28", "NIFTY_2025-09-02"]
CONTRACTS = ["NSE_FO|1|28-08-2025", "NSE_FO|2|28-08-2025"]


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


@pytest.fixture
def setup(tmp_path: Path):
    landing = CandleLanding(tmp_path / "landing", "1minute")
    for i, key in enumerate(KEYS):
        for j, contract in enumerate(CONTRACTS):
            landing.save(
                key,
                contract,
                candles_frame("2025-08-01 09:15", 50 + j, 100.0 * (i + 1)),
                {date(2025, 8, 1): DayRecord("complete", 28, None, datetime.now(UTC))},
            )
    return landing, tmp_path / "db.duckdb"


def staged(landing: CandleLanding, key: str, *extra: Path) -> StagedCandles:
    files = sorted(landing.partition_dir(key).glob("*.parquet"))
    return StagedCandles(key, (*files, *extra), status_frame(key, CONTRACTS[0]))


def counts(database: Path) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as db:
        return db.execute(
            "SELECT partition_key, count(*), sum(close) FROM candles GROUP BY 1 ORDER BY 1"
        ).fetchall()


def status_counts(database: Path) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as db:
        return db.execute(
            "SELECT partition_key, count(*) FROM candle_fetch_status GROUP BY 1 ORDER BY 1"
        ).fetchall()


def test_candle_partitions_are_published_and_replaced_independently(setup) -> None:
    landing, database = setup
    assert [publish_candles(database, staged(landing, k)).outcome for k in KEYS] == [
        PUBLISHED_NEW,
        PUBLISHED_NEW,
    ]
    assert counts(database) == [(KEYS[0], 101, 101 * 100.0), (KEYS[1], 101, 101 * 200.0)]
    # Re-publishing one partition replaces exactly its rows, in both tables.
    again = publish_candles(database, staged(landing, KEYS[0]))
    assert again == Published(101, PUBLISHED_REPLACED)
    assert counts(database) == [(KEYS[0], 101, 101 * 100.0), (KEYS[1], 101, 101 * 200.0)]
    assert status_counts(database) == [(KEYS[0], 1), (KEYS[1], 1)]
    with duckdb.connect(str(database), read_only=True) as db:
        keys = db.execute(
            "SELECT expired_instrument_key FROM candles WHERE partition_key = ?", [KEYS[0]]
        ).fetchall()
    assert [k for (k,) in keys] == sorted(k for (k,) in keys)  # inserted sorted for zone maps
    # Unchanged since it was published: nothing is written when asked to skip.
    skipped = publish_candles(database, staged(landing, KEYS[0]), skip_unchanged=True)
    assert skipped == Published(101, PUBLISHED_UNCHANGED)
    assert publish_partition(database, staged(landing, KEYS[1])) == 101


def test_a_publish_failing_midway_leaves_the_previous_partition_intact(setup) -> None:
    landing, database = setup
    for key in KEYS:
        publish_candles(database, staged(landing, key))
    before = counts(database), status_counts(database)

    broken = landing.partition_dir(KEYS[0]) / "broken.parquet"
    broken.write_bytes(b"PAR1 this is not a parquet file PAR1")
    # Both DELETEs run first inside the transaction; the INSERT then fails.
    with pytest.raises(duckdb.Error):
        publish_candles(database, staged(landing, KEYS[0], broken))
    assert (counts(database), status_counts(database)) == before


KILL_MIDWAY = """
import os, signal, sys
from expirytrack_dagster.storage.io_manager import transaction
with transaction(sys.argv[1]) as connection:
    for table in ("candles", "candle_fetch_status"):
        connection.execute(f"DELETE FROM main.{table} WHERE partition_key = ?", [sys.argv[2]])
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_writer_killed_inside_the_transaction_leaves_the_partition_intact(setup) -> None:
    landing, database = setup
    for key in KEYS:
        publish_candles(database, staged(landing, key))
    before = counts(database), status_counts(database)
    killed = subprocess.run(
        [sys.executable, "-c", KILL_MIDWAY, str(database), KEYS[0]], capture_output=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert (counts(database), status_counts(database)) == before


def test_a_publish_into_a_store_of_the_other_source_writes_nothing(setup) -> None:
    landing, database = setup
    publish_candles(database, staged(landing, KEYS[0]), source="sandbox")
    before = counts(database), status_counts(database)
    with pytest.raises(StoreError, match="will not mix them"):
        publish_candles(database, staged(landing, KEYS[1]), source="upstox")
    assert (counts(database), status_counts(database)) == before


def expiry_row(key: str) -> dict:
    return {
        "checked_at": pd.Timestamp(datetime(2025, 9, 1, tzinfo=IST)),  # deliberately out of order
        "partition_key": key,
        "underlying_symbol": "NIFTY",
        "underlying_key": "NSE_INDEX|Nifty 50",
        "expiry": date(2025, 8, 28),
        "is_monthly": True,
        "data_source": "sandbox",
    }


def frame_asset(name: str, frame: pd.DataFrame, partitioned: bool = True):
    @asset(
        name=name,
        partitions_def=expiry_partitions if partitioned else None,
        metadata={"partition_expr": "partition_key"} if partitioned else None,
    )
    def _asset() -> pd.DataFrame:
        return frame

    return _asset


def test_frame_partitions_replace_only_their_rows_and_load_back(tmp_path: Path) -> None:
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(expiry_partitions.name, KEYS)
    io_manager = ExpiryTrackIOManager(database=str(tmp_path / "db.duckdb"), schema="main")
    loaded: dict[str, pd.DataFrame] = {}

    @asset(partitions_def=expiry_partitions)
    def reader(context: AssetExecutionContext, expiries: pd.DataFrame) -> None:
        loaded[context.partition_key] = expiries

    def expiries(key: str, symbol: str) -> pd.DataFrame:
        return pd.DataFrame([{**expiry_row(key), "underlying_symbol": symbol}])

    for key in KEYS:
        result = materialize(
            [frame_asset("expiries", expiries(key, "NIFTY")), reader],
            partition_key=key,
            instance=instance,
            resources={"io_manager": io_manager},
        )
        meta = result.asset_materializations_for_node("expiries")[0].metadata
        assert meta["dagster/row_count"].value == 1
        assert meta["dagster/table_name"].value == "main.expiries"
    assert [loaded[k]["partition_key"].tolist() for k in KEYS] == [[KEYS[0]], [KEYS[1]]]
    materialize(
        [frame_asset("expiries", expiries(KEYS[0], "BANKNIFTY"))],
        partition_key=KEYS[0],
        instance=instance,
        resources={"io_manager": io_manager},
    )
    with duckdb.connect(str(tmp_path / "db.duckdb"), read_only=True) as db:
        rows = db.execute(
            "SELECT partition_key, underlying_symbol FROM expiries ORDER BY 1"
        ).fetchall()
    assert rows == [(KEYS[0], "BANKNIFTY"), (KEYS[1], "NIFTY")]


def test_an_input_never_stored_loads_as_an_empty_frame(tmp_path: Path) -> None:
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(expiry_partitions.name, KEYS)
    io_manager = ExpiryTrackIOManager(database=str(tmp_path / "db.duckdb"), schema="main")
    seen: list[pd.DataFrame] = []

    @asset(partitions_def=expiry_partitions)
    def reader(contracts: pd.DataFrame) -> None:
        seen.append(contracts)

    contracts_spec = frame_asset("contracts", pd.DataFrame())
    assert materialize(
        [contracts_spec, reader],
        selection=[reader.key],
        partition_key=KEYS[0],
        instance=instance,
        resources={"io_manager": io_manager},
    ).success
    assert len(seen) == 1 and seen[0].empty


def test_frames_insert_by_name_and_a_failed_write_keeps_the_old_rows(tmp_path: Path) -> None:
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(expiry_partitions.name, KEYS)
    io_manager = ExpiryTrackIOManager(database=str(tmp_path / "db.duckdb"), schema="main")
    assert materialize(
        [frame_asset("expiries", pd.DataFrame([expiry_row(KEYS[0])]))],
        partition_key=KEYS[0],
        instance=instance,
        resources={"io_manager": io_manager},
    ).success
    # The DELETE of the stored row runs first inside the transaction; the INSERT then fails.
    bad = materialize(
        [frame_asset("expiries", pd.DataFrame([{**expiry_row(KEYS[0]), "surprise": 1}]))],
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
