"""The Parquet export: one dataset, hive-partitioned by underlying and expiry, zstd, typed.

Written by DuckDB's own ``COPY … (FORMAT parquet)``, one per collected partition, straight from
the selection's query: streamed, never held in memory. Files land in
``underlying=NIFTY/expiry=2025-08-28/<stem>.parquet``; the two partition columns live in the
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
    """Write the dataset under ``directory``: one file per underlying and expiry."""
    files = []
    for part in source.parts:
        folder = directory / f"underlying={part.underlying}" / f"expiry={part.expiry.isoformat()}"
        folder.mkdir(parents=True)
        path = folder / f"{stem}.parquet"
        source.copy(
            part,
            path,
            "FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880",
            columns="* EXCLUDE (underlying, expiry)",
        )
        rows = pq.ParquetFile(path).metadata.num_rows
        if rows == 0:  # the partition has no candle in the time range: no empty file
            path.unlink()
            folder.rmdir()
            continue
        files.append(exported(path, rows))
        progress(rows)
    return files
