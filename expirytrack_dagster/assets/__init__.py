"""The partitioned assets: expiries → contracts → candles and candle_fetch_status (one step);
expiries → index_candles (the underlying's own candles)."""

from expirytrack_dagster.assets.candles import candles
from expirytrack_dagster.assets.contracts import contracts
from expirytrack_dagster.assets.expiries import expiries
from expirytrack_dagster.assets.index_candles import index_candles

__all__ = ["candles", "contracts", "expiries", "index_candles"]
