"""The research layer: the option chain as of any minute, OI analytics, IV and greeks, resampling.

For notebooks::

    from expirytrack_dagster import research
    chain = research.option_chain("NIFTY", "2025-08-28", "2025-08-14 10:30")
    tracker = research.oi_tracker("NIFTY", "2025-08-28", "2025-08-14 10:30")
    bars = research.candles("NSE_FO|35009|28-08-2025", interval="5minute")

The API (``research.api``: ``option_chain``, ``oi_tracker``, ``max_pain``, ``pcr``, ``candles``,
``open_database``, ``ResearchError``) is imported on first use, so importing this package costs
nothing. Below it, pure numpy/pandas building blocks with no database: ``black76`` (prices,
solved IV, greeks), ``expiry_time`` (years to the expiry session's close), ``asof`` (the chain
at a minute), ``forward`` (synthetic forward, ATM strike), ``oi`` (PCR, max pain, build-up, OI
tracker), ``resample`` (session-aligned bars).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from expirytrack_dagster.research.api import (
        ResearchError,
        candles,
        max_pain,
        oi_tracker,
        open_database,
        option_chain,
        pcr,
    )

__all__ = [
    "ResearchError",
    "candles",
    "max_pain",
    "oi_tracker",
    "open_database",
    "option_chain",
    "pcr",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("expirytrack_dagster.research.api"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
