"""The capture's clock: what time it is and how to wait for a moment, real or time-scaled."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from expirytrack_dagster.calendar import IST


class SessionClock:
    """``now()`` in IST and ``sleep_until(moment)``.

    ``SessionClock()`` is the wall clock. ``SessionClock(now=other_clock.now, speed=600)`` follows
    another clock that runs ``speed`` times faster than real time (the sandbox's live clock), so
    a test or ``expirytrack demo --live`` plays a session minute every 0.1 s.
    """

    def __init__(self, now: Callable[[], datetime] | None = None, speed: float = 1.0):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._now = now or (lambda: datetime.now(IST))
        self.speed = speed

    def now(self) -> datetime:
        return self._now().astimezone(IST)

    async def sleep_until(self, moment: datetime) -> None:
        """Return once ``now()`` has reached ``moment`` (at once if it already has)."""
        while True:
            left = (moment - self.now()).total_seconds()
            if left <= 0:
                return
            await asyncio.sleep(min(left / self.speed, 5.0))


class SteppedClock(SessionClock):
    """Virtual time: waiting for a moment moves the clock there at once (``set_now``).

    A session then plays as fast as the machine computes it, and a loaded machine can never make
    a minute late, so tests are exact. ``now`` and ``set_now`` are another clock's (the sandbox's
    live clock, frozen: ``lambda m: clock.set(m, speed=0)``).
    """

    def __init__(self, now: Callable[[], datetime], set_now: Callable[[datetime], None]):
        super().__init__(now=now)
        self._set_now = set_now

    async def sleep_until(self, moment: datetime) -> None:
        if self.now() < moment:
            self._set_now(moment)
        await asyncio.sleep(0)  # let other tasks see the new time before the caller goes on
