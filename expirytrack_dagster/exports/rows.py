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
from datetime import date
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


BATCH_ROWS = 1 << 15
"""Rows per record batch read from DuckDB: large enough to keep writers in C; small, because
DuckDB's Arrow reader buffers batches ahead (131,072-row batches cost ~100 MB more peak memory
than 16,384 in ``make bench``'s 22 M-row stream)."""


@dataclass(frozen=True)
class Part:
    """One partition of the selection: its key, underlying and expiry (the stream's order), and
    its contracts as runs of consecutive ordinals ``(first, last)``, each read by one sorted
    query (``exports.selection.parts`` cuts them)."""

    partition_key: str
    underlying: str
    expiry: date
    chunks: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class RowSource:
    """The selection's rows: one DuckDB query per run of contracts, streamed as Arrow batches.

    ``query`` orders one run's rows as documented above and takes the parameters
    ``partition_key``, ``first_ordinal`` and ``last_ordinal``; ``parts`` are the partitions in
    stream order with their runs. Sorting a run at a time keeps DuckDB's memory to one run's,
    whatever the selection's size. The connection's time zone is IST, so DuckDB writes and
    formats timestamps in IST.
    """

    db: duckdb.DuckDBPyConnection
    query: str
    params: dict[str, object]
    parts: tuple[Part, ...]

    def part_batches(
        self,
        part: Part,
        rows: int = BATCH_ROWS,
        *,
        columns: str = "*",
        schema: pa.Schema = ROW_SCHEMA,
    ) -> Batches:
        """One partition's rows as record batches of ``schema``, run after run.

        ``columns`` may rewrite columns in SQL (``* REPLACE (…)``), where DuckDB does the work in
        parallel; ``schema`` is then the shape the rewritten rows take.
        """
        query = self.query if columns == "*" else f"SELECT {columns} FROM ({self.query})"
        for first, last in part.chunks:
            params = {
                **self.params,
                "partition_key": part.partition_key,
                "first_ordinal": first,
                "last_ordinal": last,
            }
            for batch in self.db.sql(query, params=params).to_arrow_reader(rows):
                yield batch.cast(schema)

    def batches(
        self, rows: int = BATCH_ROWS, *, columns: str = "*", schema: pa.Schema = ROW_SCHEMA
    ) -> Batches:
        """Every partition's rows (:meth:`part_batches`), partition after partition."""
        for part in self.parts:
            yield from self.part_batches(part, rows, columns=columns, schema=schema)


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
