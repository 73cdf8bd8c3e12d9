"""The Excel export: one sheet per expiry (or per expiry and contract type), streamed to disk.

Written by XlsxWriter in ``constant_memory`` mode (each row goes to disk as it is written, so
memory stays flat whatever the export's size). Every sheet has a bold header, frozen header row
and set column widths. A sheet that would pass Excel's 1,048,576 rows continues in the next one,
named with a counter — ``NIFTY 2025-08-28 (2)`` — never truncated. Excel has no time zones:
``timestamp (IST)`` holds the bar's opening minute as an Excel date-time on the IST wall clock
(``expiry`` is an Excel date), so Excel's date filters and arithmetic work on them directly.
Prices are written with 16 significant digits, which gives exchange prices (two decimals) back
exactly. XlsxWriter writes about 10,000 rows a second here, so a full sheet takes ~100 s: use
Parquet or CSV for bulk data and XLSX for what a person will open.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import xlsxwriter

from expirytrack_dagster.exports.formats import EXCEL_MAX_ROWS, Progress, WriteOptions
from expirytrack_dagster.exports.rows import ExportedFile, RowSource, exported

HEADER = (
    "underlying",
    "expiry",
    "trading_symbol",
    "instrument_key",
    "type",
    "strike",
    "timestamp (IST)",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "open_interest",
)
WIDTHS = (12, 11, 28, 26, 5, 9, 17, 10, 10, 10, 10, 12, 14)
SHEET_BY = ("expiry", "expiry_type")


def sheet_name(underlying: str, expiry: date, instrument_type: str | None, part: int) -> str:
    """``NIFTY 2025-08-28``, ``NIFTY 2025-08-28 CE``; ``(2)``… for continuation sheets."""
    name = f"{underlying} {expiry.isoformat()}"
    if instrument_type:
        name += f" {instrument_type}"
    if part > 1:
        name += f" ({part})"
    return name[:31]


class _Book:
    def __init__(self, path: Path, options: WriteOptions) -> None:
        if options.sheet_by not in SHEET_BY:
            raise ValueError(f"sheet_by {options.sheet_by!r} is not one of {', '.join(SHEET_BY)}")
        if not 1 <= options.max_sheet_rows <= EXCEL_MAX_ROWS - 1:
            # XlsxWriter ignores cells past Excel's last row (it returns -1): never let it.
            raise ValueError(
                f"max_sheet_rows {options.max_sheet_rows} is not between 1 and "
                f"{EXCEL_MAX_ROWS - 1} (Excel's rows less the header)"
            )
        self.book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
        self.bold = self.book.add_format({"bold": True, "bottom": 1})
        self.stamp = self.book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
        self.day = self.book.add_format({"num_format": "yyyy-mm-dd"})
        self.limit = options.max_sheet_rows
        self.by_type = options.sheet_by == "expiry_type"
        self.group: tuple | None = None
        self.part = 0
        self.sheet = None
        self.row = 0

    def _open(self, underlying: str, expiry: date, instrument_type: str) -> None:
        self.part += 1
        name = sheet_name(underlying, expiry, instrument_type if self.by_type else None, self.part)
        self.sheet = self.book.add_worksheet(name)
        for column, width in enumerate(WIDTHS):
            self.sheet.set_column(column, column, width)
        self.sheet.write_row(0, 0, HEADER, self.bold)
        self.sheet.freeze_panes(1, 0)
        self.row = 1

    def write(self, batch: pa.RecordBatch) -> None:
        local = pc.local_timestamp(batch.column("timestamp"))
        columns = batch.to_pydict()
        stamps = local.to_pylist()
        for i in range(batch.num_rows):
            underlying, expiry = columns["underlying"][i], columns["expiry"][i]
            kind = columns["instrument_type"][i]
            group = (underlying, expiry, kind if self.by_type else None)
            if group != self.group:
                self.group, self.part = group, 0
                self._open(underlying, expiry, kind)
            elif self.row > self.limit:
                self._open(underlying, expiry, kind)
            sheet, row = self.sheet, self.row
            sheet.write_string(row, 0, underlying)
            sheet.write_datetime(row, 1, expiry, self.day)
            sheet.write_string(row, 2, columns["trading_symbol"][i])
            sheet.write_string(row, 3, columns["instrument_key"][i])
            sheet.write_string(row, 4, kind)
            if columns["strike"][i] is not None:
                sheet.write_number(row, 5, columns["strike"][i])
            sheet.write_datetime(row, 6, stamps[i], self.stamp)
            for column, name in enumerate(
                ("open", "high", "low", "close", "volume", "open_interest"), start=7
            ):
                sheet.write_number(row, column, columns[name][i])
            self.row += 1

    def close(self) -> None:
        self.book.close()


def write(
    source: RowSource,
    directory: Path,
    *,
    stem: str,
    options: WriteOptions,
    progress: Progress,
) -> list[ExportedFile]:
    """Write one workbook ``<stem>.xlsx`` under ``directory``."""
    path = directory / f"{stem}.xlsx"
    book = _Book(path, options)
    rows = 0
    try:
        for batch in source.batches(rows=16_384):
            book.write(batch)
            rows += batch.num_rows
            progress(batch.num_rows)
    finally:
        book.close()
    return [exported(path, rows)]
