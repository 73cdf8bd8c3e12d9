"""How the explorer reads the database: read-only, never blocking a collection run."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from expirytrack_dagster.storage.database import DatabaseLocked, connect
from expirytrack_dagster.storage.stores import recorded_source

LOCK_WAIT_S = 1.0
"""How long a page waits for a writer to release the file before reading a snapshot copy."""
SNAPSHOT_MAX_AGE_S = 60.0
"""A snapshot copy is reused this long before the file is copied again."""


class NoDatabaseYet(LookupError):
    """The database file does not exist yet (nothing collected): the pages say how to make it."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"no database yet at {path}: materialise a partition in the Dagster UI (make dev) or "
            "run `expirytrack demo`, then reload this page"
        )


@dataclass(frozen=True)
class Reading:
    """An open read-only connection and what it reads: the file itself or a snapshot copy."""

    connection: duckdb.DuckDBPyConnection
    snapshot_taken: float | None
    source: str | None

    @property
    def synthetic(self) -> bool:
        """True when the database holds the built-in sandbox's synthetic data."""
        return self.source == "sandbox"


class Reader:
    """Opens ``path`` read-only per request; while a writer holds it, reads a recent copy."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._snapshot_dir: Path | None = None  # made on the first snapshot
        self._snapshot_taken: float | None = None

    def _snapshot(self) -> Path:
        if self._snapshot_dir is None:
            self._snapshot_dir = Path(tempfile.mkdtemp(prefix="expirytrack-explorer-"))
        copy = self._snapshot_dir / self.path.name
        now = time.time()
        if self._snapshot_taken is None or now - self._snapshot_taken > SNAPSHOT_MAX_AGE_S:
            shutil.copyfile(self.path, copy.with_suffix(".tmp"))
            copy.with_suffix(".tmp").replace(copy)
            self._snapshot_taken = now
        return copy

    @contextmanager
    def read(self) -> Iterator[Reading]:
        """A :class:`Reading` for one request, closed afterwards (:class:`NoDatabaseYet` first)."""
        if not self.path.exists():
            raise NoDatabaseYet(self.path)
        with ExitStack() as stack:
            taken: float | None = None
            try:
                connection = stack.enter_context(
                    connect(self.path, read_only=True, lock_timeout_s=LOCK_WAIT_S)
                )
            except DatabaseLocked:
                connection = stack.enter_context(
                    connect(self._snapshot(), read_only=True, lock_timeout_s=5.0)
                )
                taken = self._snapshot_taken
            yield Reading(connection, taken, recorded_source(connection))

    def close(self) -> None:
        """Remove the snapshot folder, if a snapshot was taken."""
        if self._snapshot_dir is not None:
            shutil.rmtree(self._snapshot_dir, ignore_errors=True)
