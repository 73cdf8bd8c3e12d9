"""Candle collection: verified request spans, canary futures, per-day outcomes, the landing loop."""

from expirytrack_dagster.collection.collect import (
    FATAL_ERRORS,
    CollectionReport,
    ContractToFetch,
    collect_candles,
    fetch_status,
    pending_days,
)

__all__ = [
    "FATAL_ERRORS",
    "CollectionReport",
    "ContractToFetch",
    "collect_candles",
    "fetch_status",
    "pending_days",
]
