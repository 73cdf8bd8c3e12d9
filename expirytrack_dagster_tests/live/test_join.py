"""Snapshots joined to candles of the same contracts: keys by the expiry suffix, minute − 1."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.live.join import expired_key, snapshots_with_candles
from expirytrack_dagster.live.store import SnapshotStore
from expirytrack_dagster.sandbox.config import SandboxConfig
from expirytrack_dagster.sandbox.live import live_key
from expirytrack_dagster.sandbox.state import SandboxState
from expirytrack_dagster.upstox.live import parse_option_chain

DAY = date(2026, 11, 20)
OPEN = datetime(2026, 11, 20, 9, 15, tzinfo=IST)


def test_snapshot_ltp_and_oi_equal_the_candle_that_ended_at_its_minute(tmp_path: Path) -> None:
    state = SandboxState(SandboxConfig(today=DAY))
    state.live.clock.set(OPEN, speed=0)
    expiry = state.live.current_expiries("NIFTY")[0]
    specs = state.market._expiry_contracts(0, expiry).options
    assert expired_key(live_key(specs[0]), expiry) == specs[0].expired_key
    store = SnapshotStore(tmp_path / "live", DAY)
    for k in (60, 61, 62):
        minute = OPEN + timedelta(minutes=k)
        state.live.clock.set(minute + timedelta(seconds=2), speed=0)
        chain = parse_option_chain(state.live.option_chain("NIFTY", expiry), minute, "NIFTY")
        store.write_minute([("NIFTY", expiry, chain)], minute)
    rows = []
    for spec in specs:
        bars = state.market.minute_bars(spec, DAY)
        for i in range(len(bars)):
            rows.append(
                (spec.expired_key, OPEN + timedelta(minutes=int(bars.minute[i])),
                 bars.close[i] / 100, int(bars.oi[i]))
            )  # fmt: skip
    database = tmp_path / "expirytrack.duckdb"
    with duckdb.connect(str(database)) as conn:
        frame = pd.DataFrame(rows, columns=["expired_instrument_key", "timestamp", "close", "oi"])
        conn.register("frame", frame)
        conn.execute(
            "CREATE TABLE candles AS SELECT expired_instrument_key, timestamp::TIMESTAMPTZ AS "
            '"timestamp", close AS open, close AS high, close AS low, close, 1 AS volume, '
            "oi AS open_interest FROM frame"
        )
    joined = snapshots_with_candles(tmp_path / "live", DAY, database)
    assert len(joined) == 3 * len(specs)  # a LEFT JOIN keeps every snapshot
    traded = joined.dropna(subset=["candle_close"])
    assert len(traded) > 30
    assert (traded["ltp"] == traded["candle_close"]).all()
    assert (traded["oi"] == traded["candle_open_interest"]).all()
