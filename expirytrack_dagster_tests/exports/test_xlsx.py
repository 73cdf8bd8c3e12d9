"""Excel: read back with openpyxl — sheets per expiry, split before the row limit, header, panes."""

from __future__ import annotations

import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from expirytrack_dagster.exports.formats import EXCEL_MAX_ROWS, WriteOptions
from expirytrack_dagster.exports.run import export
from expirytrack_dagster.exports.selection import Selection
from expirytrack_dagster.exports.xlsx import HEADER, WIDTHS, write
from expirytrack_dagster_tests.exports.conftest import expected_rows
from expirytrack_dagster_tests.exports.writer_rows import TableSource, stream_rows


def test_sheets_split_before_the_limit_and_hold_every_row(
    export_database: Path, tmp_path: Path
) -> None:
    result = export(
        Selection(("NIFTY",), interval="5minute"),
        "xlsx",
        tmp_path / "out",
        database=export_database,
        options=WriteOptions(max_sheet_rows=50),
    )
    want = expected_rows(export_database, "5minute")
    book = openpyxl.load_workbook(result.manifest.files[0].path, read_only=False)
    weekly = (want["expiry"] == want["expiry"].min()).sum()
    monthly = len(want) - weekly
    assert book.sheetnames == [
        *(f"NIFTY 2025-08-14{'' if i == 1 else f' ({i})'}" for i in range(1, -(-weekly // 50) + 1)),
        *(
            f"NIFTY 2025-08-28{'' if i == 1 else f' ({i})'}"
            for i in range(1, -(-monthly // 50) + 1)
        ),
    ]
    rows = []
    for sheet in book.worksheets:
        values = list(sheet.iter_rows(values_only=True))
        assert values[0] == HEADER
        assert sheet.freeze_panes == "A2"
        assert sheet["A1"].font.bold
        assert sheet.column_dimensions["C"].width > 20
        assert 1 <= len(values) - 1 <= 50
        rows.extend(values[1:])
    got = pd.DataFrame(rows, columns=HEADER)
    assert len(got) == len(want)
    assert (got["instrument_key"] == want["instrument_key"]).all()
    assert (got["trading_symbol"] == want["trading_symbol"]).all()
    assert (pd.to_datetime(got["expiry"]).dt.date == want["expiry"]).all()
    stamps = want["timestamp"].dt.tz_localize(None)
    assert (pd.to_datetime(got["timestamp (IST)"]) == stamps).all()
    assert (got["strike"].fillna(-1) == want["strike"].fillna(-1)).all()
    for column in ("volume", "open_interest"):
        assert (got[column] == want[column]).all(), column
    for column in ("open", "high", "low", "close"):
        # Excel keeps 15-16 significant digits: a float's last bits of noise are not kept.
        assert np.allclose(got[column], want[column], rtol=1e-15, atol=0), column


def test_a_sheet_per_expiry_and_type(export_database: Path, tmp_path: Path) -> None:
    result = export(
        Selection(("NIFTY",), interval="day"),
        "xlsx",
        tmp_path / "out",
        database=export_database,
        options=WriteOptions(sheet_by="expiry_type"),
    )
    book = openpyxl.load_workbook(result.manifest.files[0].path, read_only=True)
    assert book.sheetnames == [
        "NIFTY 2025-08-14 CE",
        "NIFTY 2025-08-14 PE",
        "NIFTY 2025-08-28 CE",
        "NIFTY 2025-08-28 FUT",
        "NIFTY 2025-08-28 PE",
    ]


def _read_back(path: Path) -> tuple[list[str], list[tuple]]:
    book = openpyxl.load_workbook(path)
    rows: list[tuple] = []
    for sheet in book.worksheets:
        values = list(sheet.iter_rows(values_only=True))
        assert values[0] == HEADER
        assert all(cell.font.bold for cell in sheet[1])
        assert sheet.freeze_panes == "A2"
        assert [sheet.column_dimensions[letter].width for letter in "ABCG"] == [
            pytest.approx(WIDTHS[i] + 0.71, abs=0.01) for i in (0, 1, 2, 6)
        ]
        rows.extend(values[1:])
    return book.sheetnames, rows


def test_every_cell_equals_its_input_row_and_sheets_split_at_the_limit(tmp_path: Path) -> None:
    table = stream_rows()
    files = write(
        TableSource(table, batch_rows=5),
        tmp_path,
        stem="s",
        options=WriteOptions(max_sheet_rows=10),
        progress=lambda rows: None,
    )
    assert [(f.path.name, f.rows) for f in files] == [("s.xlsx", table.num_rows)]
    names, rows = _read_back(files[0].path)
    # 28 weekly and 28 monthly NIFTY rows, 14 SENSEX rows: 10 + 10 + 8, 10 + 10 + 8, 10 + 4.
    assert names == [
        "NIFTY 2025-08-14",
        "NIFTY 2025-08-14 (2)",
        "NIFTY 2025-08-14 (3)",
        "NIFTY 2025-08-28",
        "NIFTY 2025-08-28 (2)",
        "NIFTY 2025-08-28 (3)",
        "SENSEX 2025-08-12",
        "SENSEX 2025-08-12 (2)",
    ]
    want = table.to_pylist()
    assert len(rows) == len(want)
    for got, row in zip(rows, want, strict=True):
        assert got == (
            row["underlying"],
            datetime.combine(row["expiry"], datetime.min.time()),
            row["trading_symbol"],
            row["instrument_key"],
            row["instrument_type"],
            row["strike"],
            row["timestamp"].replace(tzinfo=None),  # Excel date-time: the IST wall clock
            row["open"],
            row["high"],
            row["low"],
            row["close"],
            row["volume"],
            row["open_interest"],
        )


def test_continuation_sheets_per_expiry_and_type(tmp_path: Path) -> None:
    table = stream_rows()
    files = write(
        TableSource(table, batch_rows=3),
        tmp_path,
        stem="s",
        options=WriteOptions(sheet_by="expiry_type", max_sheet_rows=12),
        progress=lambda rows: None,
    )
    names, rows = _read_back(files[0].path)
    assert names == [
        "NIFTY 2025-08-14 CE",
        "NIFTY 2025-08-14 CE (2)",
        "NIFTY 2025-08-14 PE",
        "NIFTY 2025-08-14 PE (2)",
        "NIFTY 2025-08-28 CE",
        "NIFTY 2025-08-28 CE (2)",
        "NIFTY 2025-08-28 FUT",
        "NIFTY 2025-08-28 FUT (2)",
        "SENSEX 2025-08-12 CE",
        "SENSEX 2025-08-12 CE (2)",
    ]
    assert [row[3] for row in rows] == table["instrument_key"].to_pylist()


def test_an_unknown_sheet_grouping_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sheet_by 'type'"):
        write(
            TableSource(stream_rows()),
            tmp_path,
            stem="s",
            options=WriteOptions(sheet_by="type"),
            progress=lambda rows: None,
        )


@pytest.mark.parametrize("limit", [0, EXCEL_MAX_ROWS])
def test_a_sheet_limit_past_excels_rows_is_refused(tmp_path: Path, limit: int) -> None:
    with pytest.raises(ValueError, match=f"max_sheet_rows {limit} is not between 1 and 1048575"):
        write(
            TableSource(stream_rows()),
            tmp_path,
            stem="s",
            options=WriteOptions(max_sheet_rows=limit),
            progress=lambda rows: None,
        )


def test_the_workbook_is_streamed_not_held(tmp_path: Path) -> None:
    # Constant-memory mode writes each row's strings inline as the row is written; the default
    # mode keeps every cell, and a shared-string table of every text, in memory until close.
    files = write(
        TableSource(stream_rows()),
        tmp_path,
        stem="s",
        options=WriteOptions(),
        progress=lambda rows: None,
    )
    with zipfile.ZipFile(files[0].path) as archive:
        assert "xl/sharedStrings.xml" not in archive.namelist()
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
    assert 't="inlineStr"' in sheet and "NSE_FO|40001|14-08-2025" in sheet
