"""The garbage collector at a process's start-up: imports run without it, and what they made is frozen.

Importing Dagster, pandas, DuckDB and this package allocates hundreds of thousands of objects that
live as long as the process, and almost no garbage. Python's cyclic collector still walks them
every few hundred allocations: about a fifth of an ``expirytrack`` process's import time
(``import expirytrack_dagster.definitions``: 1.7-2.0 CPU-seconds with it, 1.3-1.4 without), spent
finding nothing. Every process the CLI starts pays it again: each backfill run is a child process.

``long_lived_objects()`` pauses the collector for the block that imports and builds, then freezes
what exists (``gc.freeze``: the objects move to a permanent generation that later collections do
not walk). Collection runs as usual afterwards; only garbage made inside the block and never
freed by reference counting would stay, and start-up makes next to none.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def long_lived_objects() -> Iterator[None]:
    """Run the block with the cyclic collector paused, then freeze every object that exists.

    The collector is enabled again afterwards only if it was before (a caller that turned it
    off keeps it off).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.freeze()
