"""The Parquet export: one dataset, hive-partitioned by underlying and expiry, zstd, typed.

Written by DuckDB's own ``COPY … (FORMAT parquet, PARTITION_BY (underlying, expiry))`` straight
from the selection's query: streamed, never held in memory. Files land in
``underlying=NIFTY/expiry=2025-08-28/<stem>_0.parquet``; the two partition columns live in the
directory names (hive style), which pandas, pyarrow, polars, DuckDB and Spark read back as
columns. ``timestamp`` is ``TIMESTAMP WITH TIME ZONE`` (UTC-normalised instants, zone
``Asia/Kolkata`` in the Arrow schema).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from expirytrack_dagster.exports.formats import Progress, WriteOptions
from expirytrack_dagster.exports.rows import ExportedFile, RowSource, exported


def write(
    source: RowSource,
    directory: Path,
    *,
    stem: str,
    options: WriteOptions,
    progress: Progress,
) -> list[ExportedFile]:
    """Write the dataset under ``directory``; one file (or a few) per underlying and expiry."""
    source.copy(
        directory,
        "FORMAT parquet, COMPRESSION zstd, PARTITION_BY (underlying, expiry), "
        f"FILENAME_PATTERN '{stem}_{{i}}', ROW_GROUP_SIZE 122880",
    )
    files = []
    for path in sorted(directory.rglob("*.parquet")):
        rows = pq.ParquetFile(path).metadata.num_rows
        files.append(exported(path, rows))
        progress(rows)
    return files
