"""The partitioned assets: expiries → contracts → candles and candle_fetch_status (one step)."""

from expirytrack_dagster.assets.candles import candles
from expirytrack_dagster.assets.contracts import contracts
from expirytrack_dagster.assets.expiries import expiries

__all__ = ["candles", "contracts", "expiries"]
