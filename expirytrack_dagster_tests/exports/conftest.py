"""A small real export database: NIFTY's weekly 2025-08-14 and monthly 2025-08-28 expiries with
the same strikes (the case where a ticker without the expiry would collide)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from expirytrack_dagster.storage.database import connect
from expirytrack_dagster.storage.schema import create_tables
from expirytrack_dagster.storage.stores import claim_source

IST = "Asia/Kolkata"
WEEKLY, MONTHLY = date(2025, 8, 14), date(2025, 8, 28)
DAYS = (date(2025, 8, 13), date(2025, 8, 14))
STRIKES = (24400.0, 24500.0, 24600.0)
FORWARD = 24530.0
MINUTES = 40  # 09:15 to 09:54 each day


def _contracts() -> pd.DataFrame:
    rows = []
    token = 50000
    for expiry, monthly in ((WEEKLY, False), (MONTHLY, True)):
        key = f"NIFTY_{expiry.isoformat()}"
        suffix = expiry.strftime("%d-%m-%Y")
        kinds = [("FUT", None)] if monthly else []
        kinds += [(kind, strike) for strike in STRIKES for kind in ("CE", "PE")]
        for kind, strike in kinds:
            token += 1
            label = "FUT" if kind == "FUT" else f"{strike:.0f} {kind}"
            rows.append(
                {
                    "partition_key": key,
                    "expired_instrument_key": f"NSE_FO|{token}|{suffix}",
                    "instrument_type": kind,
                    "underlying_symbol": "NIFTY",
                    "underlying_key": "NSE_INDEX|Nifty 50",
                    "expiry": expiry,
                    "strike_price": strike,
                    "lot_size": 75,
                    "tick_size": 0.05,
                    "weekly": not monthly,
                    "trading_symbol": f"NIFTY {label} {expiry.strftime('%d %b %y').upper()}",
                    "exchange_token": str(token),
                    "name": "NIFTY",
                    "segment": "NSE_FO",
                    "exchange": "NSE",
                    "underlying_type": "INDEX",
                    "freeze_quantity": 1800,
                    "minimum_lot": 75,
                }
            )
    return pd.DataFrame(rows)


def _candles(contracts: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    frames = []
    for row in contracts.itertuples():
        for day in DAYS:
            if day > row.expiry:
                continue
            opened = pd.Timestamp(datetime.combine(day, datetime.min.time()), tz=IST) + timedelta(
                hours=9, minutes=15
            )
            # Every third minute missing for CE 24600: bars must skip minutes, not invent them.
            minutes = [m for m in range(MINUTES) if not (row.strike_price == 24600 and m % 3 == 1)]
            if row.instrument_type == "FUT":
                base = np.full(len(minutes), FORWARD)
            else:
                intrinsic = max(FORWARD - row.strike_price, 0.0)
                if row.instrument_type == "PE":
                    intrinsic = max(row.strike_price - FORWARD, 0.0)
                base = np.full(len(minutes), intrinsic + 80.0)
            close = base + rng.normal(0, 0.5, len(minutes)).round(2)
            spread = rng.uniform(0.1, 2.0, len(minutes)).round(2)
            frames.append(
                pd.DataFrame(
                    {
                        "partition_key": row.partition_key,
                        "expired_instrument_key": row.expired_instrument_key,
                        "interval": "1minute",
                        "timestamp": [opened + timedelta(minutes=m) for m in minutes],
                        "open": close - 0.3,
                        "high": close + spread,
                        "low": close - 0.3 - spread,
                        "close": close,
                        "volume": rng.integers(0, 5000, len(minutes)) * 75,
                        "open_interest": 75 * (1000 + np.cumsum(rng.integers(0, 20, len(minutes)))),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def build_export_database(path: Path, source: str = "sandbox") -> Path:
    """The database described in the module docstring, at ``path``."""
    contracts = _contracts()
    candles = _candles(contracts)
    expiries = pd.DataFrame(
        {
            "partition_key": [f"NIFTY_{d.isoformat()}" for d in (WEEKLY, MONTHLY)],
            "underlying_symbol": "NIFTY",
            "underlying_key": "NSE_INDEX|Nifty 50",
            "expiry": [WEEKLY, MONTHLY],
            "is_monthly": [False, True],
            "data_source": source,
            "checked_at": pd.Timestamp("2025-10-01", tz="UTC"),
        }
    )
    with connect(path) as db:
        create_tables(db)
        claim_source(db, source, "database")
        for name, frame in (("expiries", expiries), ("contracts", contracts), ("candles", candles)):
            db.register("frame", frame)
            db.execute(f"INSERT INTO main.{name} BY NAME SELECT * FROM frame")
            db.unregister("frame")
    return path


@pytest.fixture(scope="session")
def export_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Read-only use only: the shared database (tests that write copy it)."""
    return build_export_database(tmp_path_factory.mktemp("exports") / "expirytrack.duckdb")


def database_rows(database: Path, where: str = "TRUE") -> pd.DataFrame:
    """The database's candles joined with their contracts, ordered as exports order them."""
    with duckdb.connect(str(database), read_only=True) as db:
        frame = db.execute(
            f"""
            SELECT e.underlying_symbol AS underlying, e.expiry, c.expired_instrument_key
                   AS instrument_key, k.trading_symbol, k.instrument_type, k.strike_price AS strike,
                   k.weekly, c."timestamp", c.open, c.high, c.low, c.close, c.volume,
                   c.open_interest
            FROM candles c JOIN contracts k USING (partition_key, expired_instrument_key)
            JOIN expiries e USING (partition_key)
            WHERE {where}
            ORDER BY underlying, e.expiry, instrument_type, strike, instrument_key, "timestamp"
            """
        ).df()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).dt.tz_convert(IST)
    frame["expiry"] = pd.to_datetime(frame["expiry"]).dt.date
    return frame


def expected_rows(database: Path, interval: str = "1minute", where: str = "TRUE") -> pd.DataFrame:
    """What an export of ``where`` at ``interval`` must hold: the database's rows, resampled per
    contract by the research layer's pandas reference (``research.resample``)."""
    from expirytrack_dagster.research.resample import resample

    rows = database_rows(database, where)
    fields = ["underlying", "expiry", "instrument_key", "trading_symbol", "instrument_type"]
    fields += ["strike", "weekly"]
    info = rows.drop_duplicates("instrument_key").set_index("instrument_key")[
        fields[:2] + fields[3:]
    ]
    bars = resample(rows.rename(columns={"instrument_key": "expired_instrument_key"}), interval)
    bars = bars.rename(columns={"expired_instrument_key": "instrument_key"})
    bars = bars.join(info, on="instrument_key")
    bars = bars[[*fields, "timestamp", "open", "high", "low", "close", "volume", "open_interest"]]
    order = ["underlying", "expiry", "instrument_type", "strike", "instrument_key", "timestamp"]
    return bars.sort_values(order, na_position="last").reset_index(drop=True)


def assert_same_rows(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Row for row equality of an export read back and :func:`expected_rows` (exact values)."""
    got = got.reset_index(drop=True)
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    pd.testing.assert_frame_equal(got, want, check_dtype=False, check_exact=True)
