"""Which data source a store holds, and the health check every run makes before its first request.

A database and a landing zone hold either real Upstox data or synthetic sandbox data, never both.
The database records its source in the one-row table ``main.store_source``; the landing zone in
the file ``SOURCE`` at its root. A store that holds one source refuses the other with
:class:`StoreError` (one line naming the store, both sources and the fix).

Before any API request, :func:`check_stores` opens the database and reads every block of every
table (DuckDB verifies each block's checksum as it reads it), so a damaged file is reported as one
clear error naming ``expirytrack rebuild`` before any budget is spent.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from expirytrack_dagster.ops.tables import table_checksums
from expirytrack_dagster.storage.database import connect
from expirytrack_dagster.storage.schema import table_names

SOURCE_TABLE = "store_source"
SOURCE_FILE = "SOURCE"
KNOWN_SOURCES = ("upstox", "sandbox")
REBUILD_FIX = (
    "run `expirytrack rebuild` to recreate the tables from the landing zone (no API requests; "
    "partitions whose landing was pruned come back only from `expirytrack restore` of a backup)"
)


class StoreError(RuntimeError):
    """A store is damaged or holds the other data source; the message is one line with the fix."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _describe(source: str) -> str:
    return "synthetic sandbox data" if source == "sandbox" else "real Upstox data"


def _mixing(store: str, holds: str, wanted: str) -> StoreError:
    return StoreError(
        f"{store} holds {_describe(holds)} ({holds!r}); this run collects {_describe(wanted)} "
        f"({wanted!r}) and will not mix them: point the run at its own store (sandbox runs use "
        "data/sandbox/ by default; EXPIRYTRACK_DATABASE / EXPIRYTRACK_LANDING_DIR choose others)"
    )


def recorded_source(connection: duckdb.DuckDBPyConnection) -> str | None:
    """The source the database holds: its ``store_source`` row, else what ``expiries`` says.

    Databases made before the marker existed are judged by ``expiries.data_source``; one holding
    both sources raises ``StoreError``.
    """
    tables = table_names(connection)
    if SOURCE_TABLE in tables:
        row = connection.execute(f"SELECT source FROM main.{SOURCE_TABLE} LIMIT 1").fetchall()
        if row:
            return str(row[0][0])
    if "expiries" in tables:
        found = sorted(
            row[0]
            for row in connection.execute(
                "SELECT DISTINCT data_source FROM main.expiries"
            ).fetchall()
        )
        if len(found) > 1:
            raise StoreError(
                f"the database holds both {' and '.join(found)} data (expiries.data_source): "
                "move it aside and collect again into separate stores, or delete the "
                "partitions of one source"
            )
        if found:
            return str(found[0])
    return None


def claim_source(connection: duckdb.DuckDBPyConnection, source: str, store: str) -> None:
    """Record ``source`` as what the database holds, or raise if it holds the other one.

    Call inside the transaction that writes data, so the mark and the data commit together.
    """
    if source not in KNOWN_SOURCES:
        raise ValueError(f"source must be one of {KNOWN_SOURCES}, got {source!r}")
    holds = recorded_source(connection)
    if holds is not None and holds != source:
        raise _mixing(store, holds, source)
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS main.{SOURCE_TABLE} ("
        "source VARCHAR NOT NULL, claimed_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)"
    )
    if (
        holds is None
        or not connection.execute(f"SELECT count(*) FROM main.{SOURCE_TABLE}").fetchall()[0][0]
    ):
        connection.execute(f"INSERT INTO main.{SOURCE_TABLE} (source) VALUES (?)", [source])


def landing_source(landing_root: Path | str) -> str | None:
    """The source a landing zone holds (its ``SOURCE`` file), or None when unmarked."""
    marker = Path(landing_root) / SOURCE_FILE
    return marker.read_text().strip() or None if marker.exists() else None


def claim_landing(landing_root: Path | str, source: str) -> None:
    """Mark the landing zone as holding ``source``, or raise if it holds the other one."""
    root = Path(landing_root)
    holds = landing_source(root)
    if holds is not None and holds != source:
        raise _mixing(f"the landing zone {root}", holds, source)
    if holds is None:
        root.mkdir(parents=True, exist_ok=True)
        (root / SOURCE_FILE).write_text(f"{source}\n")


def check_database(database: Path | str, source: str | None = None) -> dict[str, tuple[int, str]]:
    """Open the database and read all of it; ``StoreError`` if it is damaged or of another source.

    A missing file is fine (the first run creates it). Returns ``{table: (rows, checksum)}``
    (``ops.tables``): reading them reads, and so verifies, every block.
    """
    path = Path(database)
    if not path.exists():
        return {}
    try:
        with connect(path, read_only=True) as connection:
            sums = table_checksums(connection)
            holds = recorded_source(connection)
    except duckdb.Error as exc:
        raise StoreError(
            f"the database {path} is damaged ({_first_line(exc)}); nothing was requested: "
            f"{REBUILD_FIX}"
        ) from None
    if source is not None and holds is not None and holds != source:
        raise _mixing(f"the database {path}", holds, source)
    return sums


def check_stores(
    database: Path | str, landing_dir: Path | str | None = None, source: str | None = None
) -> None:
    """Everything a run checks before its first request: database health and both sources.

    Marks an unmarked landing zone with ``source``. Raises ``StoreError`` with the fix.
    """
    check_database(database, source)
    if landing_dir is not None and source is not None:
        claim_landing(landing_dir, source)


def disk_per_candle(database: Path | str, landing_dir: Path | str) -> tuple[int, int, int]:
    """``(database bytes, landing bytes, candles)``: what ``doctor`` reports as bytes per candle.

    The database counts its file and write-ahead log; the landing zone every Parquet file.
    """
    path = Path(database)
    db_bytes = sum(
        p.stat().st_size for p in (path, path.with_name(path.name + ".wal")) if p.exists()
    )
    landing_bytes = sum(p.stat().st_size for p in Path(landing_dir).rglob("*.parquet"))
    candles = 0
    if path.exists():
        with connect(path, read_only=True) as connection:
            if "candles" in table_names(connection):
                candles = int(
                    connection.execute("SELECT count(*) FROM main.candles").fetchall()[0][0]
                )
    return db_bytes, landing_bytes, candles
