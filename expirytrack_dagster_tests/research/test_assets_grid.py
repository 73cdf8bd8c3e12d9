"""The partition grid by hand: as-of never crosses a session, volume restarts, edge partitions."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from expirytrack_dagster.research.chain_tables import build_chain_tables
from expirytrack_dagster.research.partition_grid import (
    ChainGrid,
    OptionLegs,
    PartitionCandles,
    max_pains,
    to_minutes,
)

EXPIRY = date(2025, 8, 28)
CONTRACTS = pd.DataFrame(
    {
        "expired_instrument_key": ["C100", "C200", "F", "P100", "P200"],
        "instrument_type": ["CE", "CE", "FUT", "PE", "PE"],
        "strike_price": [100.0, 200.0, np.nan, 100.0, 200.0],
        "expiry": [EXPIRY] * 5,
    }
)


def _candles(rows: list[tuple[int, str, float, int, int]], contracts=CONTRACTS) -> PartitionCandles:
    """(contract number, IST minute, close, volume, OI) rows."""
    contract = np.array([r[0] for r in rows], dtype=np.int32)
    minute = to_minutes(pd.DatetimeIndex([pd.Timestamp(r[1], tz="Asia/Kolkata") for r in rows]))
    close = np.array([r[2] for r in rows])
    return PartitionCandles(
        "X_2025-08-28",
        contracts,
        contract,
        minute,
        close,
        close,
        close,
        close,
        np.array([r[3] for r in rows], dtype=np.int64),
        np.array([r[4] for r in rows], dtype=np.int64),
    )


def test_as_of_stays_in_the_session_and_volume_restarts() -> None:
    candles = _candles(
        [
            (0, "2025-08-25 09:15", 10.0, 5, 100),
            (0, "2025-08-25 09:20", 11.0, 7, 110),
            (3, "2025-08-25 09:20", 4.0, 1, 50),
            (3, "2025-08-26 09:16", 5.0, 2, 60),
        ]
    )
    grid = ChainGrid.build(candles)
    at = to_minutes(
        pd.DatetimeIndex(
            [
                pd.Timestamp("2025-08-25 09:19", tz="Asia/Kolkata"),
                pd.Timestamp("2025-08-25 15:29", tz="Asia/Kolkata"),
                pd.Timestamp("2025-08-26 09:15", tz="Asia/Kolkata"),
                pd.Timestamp("2025-08-26 09:30", tz="Asia/Kolkata"),
            ]
        )
    )
    chain = grid.at(at)
    np.testing.assert_array_equal(chain.close[:, 0], [10.0, 11.0, np.nan, np.nan])
    np.testing.assert_array_equal(chain.close[:, 3], [np.nan, 4.0, np.nan, 5.0])
    np.testing.assert_array_equal(chain.age_minutes[:, 0], [4.0, 369.0, np.nan, np.nan])
    np.testing.assert_array_equal(chain.session_volume[:, 0], [5, 12, 0, 0])
    np.testing.assert_array_equal(chain.session_volume[:, 3], [0, 1, 0, 2])
    np.testing.assert_array_equal(chain.open_interest[:, 3], [np.nan, 50.0, np.nan, 60.0])


def test_max_pain_by_hand() -> None:
    legs = OptionLegs.of(CONTRACTS)
    # Settling at 100: calls pay 0, puts at 200 pay 100 x 30 = 3000.
    # Settling at 200: calls at 100 pay 100 x 10 = 1000, puts pay 0. Least: 200.
    oi = np.array([[10.0, 0.0, np.nan, 0.0, 30.0]])
    np.testing.assert_array_equal(max_pains(oi, legs), [200.0])
    np.testing.assert_array_equal(max_pains(np.zeros((1, 5)), legs), [np.nan])


def test_a_futures_only_partition_gives_daily_rows_and_no_option_rows() -> None:
    futures = CONTRACTS[CONTRACTS["instrument_type"] == "FUT"].reset_index(drop=True)
    candles = _candles(
        [(0, "2025-08-25 09:15", 100.0, 5, 10), (0, "2025-08-26 09:15", 101.0, 5, 12)], futures
    )
    tables = build_chain_tables(candles, rate=0.065, bucket_minutes=15, max_age_minutes=5)
    assert tables.option_greeks.empty and tables.chain_metrics.empty
    daily = tables.option_chain_daily
    assert daily["oi_change"].tolist()[1] == 2 and daily["build_up"].tolist() == [
        None,
        "long_build_up",
    ]
