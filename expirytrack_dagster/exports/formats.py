"""The export formats by name: each a writer from the row source to files, and its options."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from expirytrack_dagster.exports.rows import ExportedFile, RowSource

EXCEL_MAX_ROWS = 1_048_576
"""Rows in one Excel worksheet, header included."""


@dataclass(frozen=True)
class WriteOptions:
    """Format options (each format reads the ones that apply to it).

    - ``gzip``: CSV files gzip-compressed (``.csv.gz``).
    - ``per_contract``: CSV as one file per contract instead of one file.
    - ``sheet_by``: XLSX sheets per ``expiry`` or per ``expiry_type`` (expiry and CE/PE/FUT).
    - ``max_sheet_rows``: data rows per XLSX sheet before it continues in a new one.
    """

    gzip: bool = False
    per_contract: bool = False
    sheet_by: str = "expiry"
    max_sheet_rows: int = EXCEL_MAX_ROWS - 1


Progress = Callable[[int], None]
"""Called with the number of rows just written (a progress bar's update)."""


class Writer(Protocol):
    def __call__(
        self,
        source: RowSource,
        directory: Path,
        *,
        stem: str,
        options: WriteOptions,
        progress: Progress,
    ) -> list[ExportedFile]: ...


def _formats() -> dict[str, Writer]:
    from expirytrack_dagster.exports import amibroker, csv, metatrader, parquet, xlsx

    return {
        "parquet": parquet.write,
        "csv": csv.write,
        "xlsx": xlsx.write,
        "amibroker": amibroker.write,
        "metatrader5": metatrader.write,
    }


FORMAT_NAMES = ("parquet", "csv", "xlsx", "amibroker", "metatrader5")


def writer(name: str) -> Writer:
    """The writer of format ``name`` (one of :data:`FORMAT_NAMES`)."""
    if name not in FORMAT_NAMES:
        raise ValueError(f"format {name!r} is not one of {', '.join(FORMAT_NAMES)}")
    return _formats()[name]
