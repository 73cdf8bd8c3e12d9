"""The Parquet export: one dataset, hive-partitioned by underlying and expiry, zstd, typed.

Files land in ``underlying=NIFTY/expiry=2025-08-28/<stem>.parquet``; the two partition columns
live in the directory names (hive style), which pandas, pyarrow, polars, DuckDB and Spark read back
as columns. ``timestamp`` is a timezone-aware instant (Parquet ``TIMESTAMP(isAdjustedToUTC)``,
zone ``Asia/Kolkata`` in the stored Arrow schema). Each file is written by pyarrow's
``ParquetWriter`` from the partition's sorted stream (``RowSource.part_batches``: DuckDB sorts
one run of contracts at a time in memory), in row groups of :data:`ROW_GROUP_ROWS`: one pass,
memory bounded by a run and a row group, never the partition.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from expirytrack_dagster.exports.formats import Progress, WriteOptions
from expirytrack_dagster.exports.rows import ROW_SCHEMA, ExportedFile, RowSource, exported

ROW_GROUP_ROWS = 122_880
"""Rows per Parquet row group (DuckDB's own default): large enough for good compression and
statistics, small enough that a reader can skip by strike or time."""

FOLDER_COLUMNS = ("underlying", "expiry")
"""The hive partition columns: in the folder names, not in the files."""

PARQUET_SCHEMA = pa.schema([f for f in ROW_SCHEMA if f.name not in FOLDER_COLUMNS])
"""The columns a file holds: :data:`ROW_SCHEMA` without the folder columns."""


class _File:
    """One partition's file, opened on its first row and written a full row group at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.RecordBatch] = []
        self._size = 0

    def append(self, batch: pa.RecordBatch) -> None:
        self._pending.append(batch)
        self._size += batch.num_rows
        while self._size >= ROW_GROUP_ROWS:
            table = pa.Table.from_batches(self._pending, schema=PARQUET_SCHEMA)
            self._write(table.slice(0, ROW_GROUP_ROWS))
            rest = table.slice(ROW_GROUP_ROWS)
            self._pending, self._size = rest.to_batches(), rest.num_rows

    def _write(self, table: pa.Table) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True)
            self._writer = pq.ParquetWriter(self.path, PARQUET_SCHEMA, compression="zstd")
        self._writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.rows += table.num_rows

    def close(self) -> ExportedFile | None:
        """The finished file, or None when the partition had no row (no empty file)."""
        if self._size:
            self._write(pa.Table.from_batches(self._pending, schema=PARQUET_SCHEMA))
        if self._writer is None:
            return None
        self._writer.close()
        return exported(self.path, self.rows)


def write(
    source: RowSource,
    directory: Path,
    *,
    stem: str,
    options: WriteOptions,
    progress: Progress,
) -> list[ExportedFile]:
    """Write the dataset under ``directory``: one file per underlying and expiry."""
    files = []
    columns = f"* EXCLUDE ({', '.join(FOLDER_COLUMNS)})"
    for part in source.parts:
        folder = directory / f"underlying={part.underlying}" / f"expiry={part.expiry.isoformat()}"
        out = _File(folder / f"{stem}.parquet")
        for batch in source.part_batches(part, columns=columns, schema=PARQUET_SCHEMA):
            out.append(batch)
            progress(batch.num_rows)
        finished = out.close()
        if finished is not None:
            files.append(finished)
    return files
