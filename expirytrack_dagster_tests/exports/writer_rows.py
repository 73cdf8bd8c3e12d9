"""Rows of the export stream built directly (no selection): for testing one writer on its own.

Prices are exchange-like (multiples of 0.05 with two decimals), so every format must give back
exactly the numbers it was given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from expirytrack_dagster.exports.rows import ROW_SCHEMA, Batches
from expirytrack_dagster.exports.tickers import strike_text, ticker

IST = "Asia/Kolkata"


@dataclass(frozen=True)
class Contract:
    """One test contract: what the stream says about it, and its expected names."""

    underlying: str
    expiry: date
    instrument_type: str
    strike: float | None
    weekly: bool
    instrument_key: str

    @property
    def upstox_symbol(self) -> str:
        """Upstox's trading symbol: ``NIFTY 24500 CE 14 AUG 25``, ``NIFTY FUT 28 AUG 25``."""
        strike = "" if self.strike is None else f"{strike_text(self.strike)} "
        return f"{self.underlying} {strike}{self.instrument_type} {self.expiry:%d %b %y}".upper()

    @property
    def ticker(self) -> str:
        return ticker(self.underlying, self.expiry, self.instrument_type, self.strike, self.weekly)


NIFTY_WEEKLY, NIFTY_MONTHLY = date(2025, 8, 14), date(2025, 8, 28)
CONTRACTS = (
    Contract("NIFTY", NIFTY_WEEKLY, "CE", 24500.0, True, "NSE_FO|40001|14-08-2025"),
    Contract("NIFTY", NIFTY_WEEKLY, "PE", 24500.0, True, "NSE_FO|40002|14-08-2025"),
    Contract("NIFTY", NIFTY_MONTHLY, "CE", 24500.0, False, "NSE_FO|40011|28-08-2025"),
    Contract("NIFTY", NIFTY_MONTHLY, "FUT", None, False, "NSE_FO|40010|28-08-2025"),
    Contract("SENSEX", date(2025, 8, 12), "CE", 80500.5, True, "BSE_FO|70001|12-08-2025"),
)
SESSIONS = (date(2025, 8, 11), date(2025, 8, 12))


def stream_rows(
    contracts: tuple[Contract, ...] = CONTRACTS,
    minutes: int = 7,
    sessions: tuple[date, ...] = SESSIONS,
) -> pa.Table:
    """``minutes`` one-minute bars from 09:15 IST per contract and session (up to its expiry),
    in the stream's order (underlying, expiry, type, strike, key, timestamp)."""
    order = sorted(
        contracts,
        key=lambda c: (c.underlying, c.expiry, c.instrument_type, c.strike or 0, c.instrument_key),
    )
    rows = []
    for n, contract in enumerate(order):
        for day in sessions:
            if day > contract.expiry:
                continue
            opened = datetime(day.year, day.month, day.day, 9, 15)
            for m in range(minutes):
                low = 100 + n * 10 + m * 0.35
                rows.append(
                    {
                        "underlying": contract.underlying,
                        "expiry": contract.expiry,
                        "instrument_key": contract.instrument_key,
                        "trading_symbol": contract.upstox_symbol,
                        "instrument_type": contract.instrument_type,
                        "strike": contract.strike,
                        "weekly": contract.weekly,
                        "timestamp": (opened + timedelta(minutes=m)).isoformat() + "+05:30",
                        "open": round(low + 0.4, 2),
                        "high": round(low + 1.25, 2),
                        "low": round(low, 2),
                        "close": round(low + 0.85, 2),
                        "volume": 75 * (m + 1) * (n + 2),
                        "open_interest": 75 * (1000 + 13 * m + n),
                    }
                )
    table = pa.Table.from_pylist(
        rows, schema=ROW_SCHEMA.set(7, pa.field("timestamp", pa.string(), nullable=False))
    )
    stamps = pc.cast(
        pc.strptime(table["timestamp"], "%Y-%m-%dT%H:%M:%S%z", "us"),
        pa.timestamp("us", tz=IST),
    )
    return table.set_column(7, ROW_SCHEMA.field("timestamp"), stamps)


class TableSource:
    """Stands in for the selection's ``RowSource`` (writers read only its ``batches``): an Arrow
    table served in batches of ``batch_rows`` rows, small so that contracts continue across
    batches as they do in large exports."""

    def __init__(self, table: pa.Table, batch_rows: int = 5) -> None:
        self.table = table
        self.batch_rows = batch_rows

    def batches(self, rows: int = 0) -> Batches:
        """The table's rows in batches of ``batch_rows`` (``rows`` is ignored)."""
        yield from self.table.to_batches(max_chunksize=self.batch_rows)
