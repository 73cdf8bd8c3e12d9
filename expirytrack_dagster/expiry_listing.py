"""Listing an underlying's expiries from Upstox, and telling which of them are final.

Shared by the new-expiry sensor (``sensors.py``) and the backfill commands (``backfill.py``): both
turn the expiries Upstox lists into partitions once they are final.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from expirytrack_dagster.async_runner import run_async
from expirytrack_dagster.calendar import IST, REGULAR_CLOSE, session_for
from expirytrack_dagster.instruments import Underlying, underlying_for
from expirytrack_dagster.resources import UpstoxApi
from expirytrack_dagster.upstox.limiter import BudgetWait


class BudgetTaken(Exception):
    """The shared rate budget has no room for a listing's requests soon enough."""

    def __init__(self, budget: BudgetWait) -> None:
        super().__init__(budget.describe())
        self.budget = budget


def is_final(expiry: date, now: datetime, delay: timedelta) -> bool:
    """True once the expiry day's session has closed and ``delay`` has passed.

    Until then the day's last candles may still be settling, so collecting it would be early.
    """
    session = session_for(expiry)
    close = session.close if session else datetime.combine(expiry, REGULAR_CLOSE, tzinfo=IST)
    return now >= close + delay


async def list_expiries(
    upstox: UpstoxApi,
    underlyings: Iterable[Underlying],
    *,
    max_budget_wait_s: float | None = None,
) -> dict[str, list[date]]:
    """Each underlying's listed expiries, through one client (one request each).

    With ``max_budget_wait_s``, first ask the shared rate ledger (without taking anything) when
    there is room for all the requests, and raise ``BudgetTaken`` instead of waiting longer.
    """
    underlyings = list(underlyings)
    async with upstox.client() as client:
        if max_budget_wait_s is not None and underlyings:
            smallest = min(w.limit for w in client.limiter.limits.windows())
            budget = client.limiter.budget_wait(min(len(underlyings), smallest))
            if budget.wait_s > max_budget_wait_s:
                raise BudgetTaken(budget)
        return {u.symbol: await client.get_expiries(u.instrument_key) for u in underlyings}


def final_expiries(
    upstox: UpstoxApi, symbols: Iterable[str], delay: timedelta
) -> dict[str, list[date]]:
    """Each watched symbol's listed expiries that are final (session closed plus ``delay``)."""
    listed = run_async(list_expiries(upstox, [underlying_for(s) for s in symbols]))
    now = datetime.now(IST)
    return {symbol: [d for d in days if is_final(d, now, delay)] for symbol, days in listed.items()}
