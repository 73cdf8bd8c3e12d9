"""Canaries: the futures whose answers prove a request span, since they trade every session minute.

A span is proven at the *tail* by a future on its expiry day (the front month trades every
minute until the close), and at the *head* by the future that was the front month on the
window's first day. For a monthly partition the tail witness is its own future. A weekly expiry
has no future, so it borrows the latest monthly future of the same underlying that expired on
or before it: the same underlying, the same API, and a contract that trades every minute —
a weekly option, even at the money, goes minutes without a trade and proves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from expirytrack_dagster.upstox.client import UpstoxClient

MAX_LOOKUPS = 8
"""Contract-list requests one search may spend walking expiries to find a monthly future."""


@dataclass(frozen=True)
class Canary:
    """A future and the expiry it trades up to."""

    expired_instrument_key: str
    expiry: date


class CanaryFinder:
    """Finds witness futures for one partition, caching every list it asked for."""

    def __init__(
        self,
        client: UpstoxClient,
        underlying_key: str,
        expiry: date,
        own_future: str | None = None,
        *,
        can_list: bool = True,
    ) -> None:
        self.client = client
        self.underlying_key = underlying_key
        self.expiry = expiry
        self._futures: dict[date, str | None] = {}
        if own_future is not None:
            self._futures[expiry] = own_future
        self._expiries: list[date] | None = None
        self.can_list = can_list  # False: the underlying is unknown, only ``own_future`` serves

    async def _future_of(self, expiry: date) -> str | None:
        if expiry not in self._futures and not self.can_list:
            return None
        if expiry not in self._futures:
            listed = await self.client.get_future_contracts(self.underlying_key, expiry)
            futures = sorted(c.expired_instrument_key for c in listed)
            self._futures[expiry] = futures[0] if futures else None
        return self._futures[expiry]

    async def _listed_expiries(self) -> list[date]:
        if self._expiries is None and not self.can_list:
            return []
        if self._expiries is None:
            self._expiries = await self.client.get_expiries(self.underlying_key)
        return self._expiries

    async def tail_witness(self) -> Canary | None:
        """The partition's own future, else the latest monthly future expired on or before it."""
        own = await self._future_of(self.expiry)
        if own is not None:
            return Canary(own, self.expiry)
        earlier = sorted(
            (d for d in await self._listed_expiries() if d < self.expiry), reverse=True
        )
        return await self._first_monthly(earlier)

    async def front_month(self, day: date) -> Canary | None:
        """The future with the nearest expiry on or after ``day``: the front month that day."""
        later = sorted(d for d in await self._listed_expiries() if d >= day)
        return await self._first_monthly(later)

    async def _first_monthly(self, expiries: list[date]) -> Canary | None:
        for expiry in expiries[:MAX_LOOKUPS]:
            future = await self._future_of(expiry)
            if future is not None:
                return Canary(future, expiry)
        return None
