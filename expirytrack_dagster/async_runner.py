"""The one place synchronous code (assets, sensors, the CLI) runs the async Upstox client.

Dagster calls asset and sensor functions synchronously; the Upstox client is async (many
requests in flight on one HTTP/2 connection). ``run_async`` bridges the two. Where an event loop
is already running in this thread (a Jupyter notebook, an async caller), ``asyncio.run`` would
refuse, so the coroutine then runs on its own loop in a short-lived worker thread instead.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion and return its result (or raise its exception)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = asyncio.run(coroutine)
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="expirytrack-async", daemon=True)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
