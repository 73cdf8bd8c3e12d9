"""The one row shape every export writer reads: an ordered stream of Arrow record batches.

The selection (``exports.selection``) turns the database into this stream; each format writer
(``exports.parquet``, ``exports.csv``, ``exports.xlsx``, ``exports.amibroker``,
``exports.metatrader``) consumes it once, in order, without holding more than one batch. Rows are
ordered by underlying, expiry, instrument type, strike, instrument key and timestamp, so all rows
of one contract are consecutive (a contract may continue into the next batch).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

IST_ZONE = "Asia/Kolkata"

ROW_SCHEMA = pa.schema(
    [
        pa.field("underlying", pa.string(), nullable=False),
        pa.field("expiry", pa.date32(), nullable=False),
        pa.field("instrument_key", pa.string(), nullable=False),
        pa.field("trading_symbol", pa.string(), nullable=False),
        pa.field("instrument_type", pa.string(), nullable=False),  # CE, PE or FUT
        pa.field("strike", pa.float64()),  # null for futures
        pa.field("weekly", pa.bool_(), nullable=False),
        pa.field("timestamp", pa.timestamp("us", tz=IST_ZONE), nullable=False),  # bar open, IST
        pa.field("open", pa.float64(), nullable=False),
        pa.field("high", pa.float64(), nullable=False),
        pa.field("low", pa.float64(), nullable=False),
        pa.field("close", pa.float64(), nullable=False),
        pa.field("volume", pa.int64(), nullable=False),
        pa.field("open_interest", pa.int64(), nullable=False),
    ]
)
"""Columns of the export stream. ``timestamp`` is the bar's opening minute, timezone-aware IST."""

Batches = Iterator[pa.RecordBatch]
"""What a writer consumes: record batches of :data:`ROW_SCHEMA`, in the order described above."""


@dataclass(frozen=True)
class ExportedFile:
    """One file an export wrote: its path, how many data rows it holds and its SHA-256."""

    path: Path
    rows: int
    sha256: str


BATCH_ROWS = 1 << 17
"""Rows per record batch read from DuckDB: large enough to keep writers in C, small enough that
one batch is a few MB."""


@dataclass(frozen=True)
class RowSource:
    """The selection's rows in one DuckDB query: streamed as batches, or copied by DuckDB itself.

    ``query`` already orders the rows as documented above; ``params`` are its named parameters.
    The connection's time zone is IST, so DuckDB writes and formats timestamps in IST.
    """

    db: duckdb.DuckDBPyConnection
    query: str
    params: dict[str, object]

    def batches(self, rows: int = BATCH_ROWS) -> Batches:
        """The rows as record batches of :data:`ROW_SCHEMA` (one query, read as it goes)."""
        reader = self.db.sql(self.query, params=self.params).to_arrow_reader(rows)
        for batch in reader:
            yield batch.cast(ROW_SCHEMA)

    def copy(self, target: Path, options: str, *, columns: str = "*") -> None:
        """DuckDB's own ``COPY (SELECT columns FROM query) TO target (options)``: streamed."""
        self.db.execute(
            f"COPY (SELECT {columns} FROM ({self.query})) TO '{_quoted(target)}' ({options})",
            self.params,
        )


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def exported(path: Path, rows: int) -> ExportedFile:
    """The :class:`ExportedFile` of a finished file."""
    return ExportedFile(path, rows, sha256_of(path))
