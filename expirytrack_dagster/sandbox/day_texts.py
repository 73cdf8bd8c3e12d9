"""The process-wide cache of rendered candle days: one contract's JSON rows of one session.

A day's text depends only on the market's seed, the contract (its underlying's profile included),
the day and the interval: never on ``today`` (which only hides days) or on which market instance
asks. Markets with the same seed therefore share what they rendered: a sandbox restarted in the
same process (``expirytrack demo --live`` after a collection, a test suite's many sandboxes)
serves a day it rendered before without pricing it again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

MAX_DAYS = 2048
"""Days kept (least recently used dropped first): ~45 MB of 1-minute days at most, the size the
per-market cache had before it was shared."""


class DayTexts:
    """A thread-safe least-recently-used map of day key → rendered text."""

    def __init__(self, max_days: int = MAX_DAYS) -> None:
        self.max_days = max_days
        self._texts: OrderedDict[Hashable, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, render: Callable[[], str]) -> str:
        """The text cached under ``key``, else ``render()``'s, cached. Rendering runs outside the
        lock: two threads asking for the same new day may both render it (same text)."""
        with self._lock:
            text = self._texts.get(key)
            if text is not None:
                self._texts.move_to_end(key)
                return text
        text = render()
        with self._lock:
            self._texts[key] = text
            self._texts.move_to_end(key)
            while len(self._texts) > self.max_days:
                self._texts.popitem(last=False)
        return text

    def clear(self) -> None:
        """Forget every day (a test proving that two markets render alike renders twice)."""
        with self._lock:
            self._texts.clear()

    def __len__(self) -> int:
        return len(self._texts)


DAY_TEXTS = DayTexts()
"""The cache every ``SyntheticMarket`` in this process reads and fills."""
