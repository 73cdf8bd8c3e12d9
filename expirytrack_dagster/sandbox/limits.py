"""Server-side rate limiting: per-token sliding windows, like Upstox's 50/s, 500/min, 2000/30 min."""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    """At most ``limit`` requests in any ``seconds``-long sliding window."""

    limit: int
    seconds: float


def upstox_windows(
    per_second: int | None = 50,
    per_minute: int | None = 500,
    per_30_minutes: int | None = 2000,
    time_scale: float = 1.0,
) -> tuple[Window, ...]:
    """The three Upstox windows; ``time_scale`` multiplies their lengths, None drops one."""
    spans = ((per_second, 1.0), (per_minute, 60.0), (per_30_minutes, 1800.0))
    return tuple(Window(limit, seconds * time_scale) for limit, seconds in spans if limit)


class SlidingWindowLimiter:
    """Admits a request when every window still has room; counts only admitted requests.

    Requests are counted at arrival. A rejected request is not recorded, so a client that keeps
    hammering after a 429 is admitted again as soon as old requests leave the windows.
    """

    def __init__(self, windows: Sequence[Window], clock: Callable[[], float] = time.monotonic):
        self.windows = tuple(windows)
        self._horizon = max((w.seconds for w in self.windows), default=0.0)
        self._clock = clock
        self._arrivals: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def try_acquire(self, token: str) -> bool:
        """Record a request for ``token`` and return True, or return False if a window is full."""
        if not self.windows:
            return True
        now = self._clock()
        with self._lock:
            arrivals = self._arrivals.setdefault(token, [])
            stale = bisect.bisect_right(arrivals, now - self._horizon)
            if stale:
                del arrivals[:stale]
            for window in self.windows:
                inside = len(arrivals) - bisect.bisect_right(arrivals, now - window.seconds)
                if inside >= window.limit:
                    return False
            arrivals.append(now)
            return True

    def reset(self) -> None:
        """Forget every recorded request."""
        with self._lock:
            self._arrivals.clear()
