"""The CSV export: one file, or one file per contract; ISO-8601 timestamps with ``+05:30``.

Columns are those of the row stream (``exports.rows.ROW_SCHEMA``); ``timestamp`` is the bar's
opening minute written as ``2025-08-14T10:30:00+05:30``. Per-contract files are named by ticker
(``exports.tickers``) and written in one pass over the ordered stream. ``gzip`` writes
``.csv.gz`` files any CSV reader opens (pandas, DuckDB, ``zcat``).
"""

from __future__ import annotations

import gzip
from contextlib import ExitStack
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.csv as pacsv

from expirytrack_dagster.exports.contract_runs import contract_runs
from expirytrack_dagster.exports.formats import Progress, WriteOptions
from expirytrack_dagster.exports.rows import ROW_SCHEMA, ExportedFile, RowSource, exported

CSV_SCHEMA = ROW_SCHEMA.set(
    ROW_SCHEMA.get_field_index("timestamp"), pa.field("timestamp", pa.string(), nullable=False)
)
_OPTIONS = pacsv.WriteOptions(include_header=False, quoting_style="needed")


ISO_TIMESTAMP = (
    "* REPLACE (strftime(timezone('Asia/Kolkata', \"timestamp\"), '%Y-%m-%dT%H:%M:%S') "
    "|| '+05:30' AS \"timestamp\")"
)
"""The timestamp as ISO-8601 text in IST, formatted by DuckDB (in parallel, several times faster
than formatting each batch in Arrow); IST has had one offset, +05:30, since 1945."""


class _File:
    """One CSV file being written: header first, rows appended, closed to an ExportedFile."""

    def __init__(self, path: Path, compress: bool) -> None:
        self.path = path
        self.rows = 0
        self._stack = ExitStack()
        raw: IO[bytes] = self._stack.enter_context(path.open("wb"))
        if compress:
            raw = self._stack.enter_context(gzip.GzipFile(fileobj=raw, mode="wb", mtime=0))
        raw.write((",".join(CSV_SCHEMA.names) + "\n").encode())
        self._writer = self._stack.enter_context(
            pacsv.CSVWriter(raw, CSV_SCHEMA, write_options=_OPTIONS)
        )

    def append(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)
        self.rows += batch.num_rows

    def close(self) -> ExportedFile:
        self._stack.close()
        return exported(self.path, self.rows)


def write(
    source: RowSource,
    directory: Path,
    *,
    stem: str,
    options: WriteOptions,
    progress: Progress,
) -> list[ExportedFile]:
    """Write the rows as CSV under ``directory``."""
    suffix = ".csv.gz" if options.gzip else ".csv"
    if not options.per_contract:
        out = _File(directory / f"{stem}{suffix}", options.gzip)
        for batch in source.batches(columns=ISO_TIMESTAMP, schema=CSV_SCHEMA):
            out.append(batch)
            progress(batch.num_rows)
        return [out.close()]
    files: list[ExportedFile] = []
    current: _File | None = None
    for run in contract_runs(source.batches(columns=ISO_TIMESTAMP, schema=CSV_SCHEMA)):
        if run.first:
            if current is not None:
                files.append(current.close())
            current = _File(directory / f"{stem}_{run.ticker}{suffix}", options.gzip)
        assert current is not None  # a stream starts with a contract's first run
        current.append(run.rows)
        progress(run.rows.num_rows)
    if current is not None:
        files.append(current.close())
    return files
