"""Excel: read back with openpyxl — sheets per expiry, split before the row limit, header, panes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd

from expirytrack_dagster.exports.formats import WriteOptions
from expirytrack_dagster.exports.run import export
from expirytrack_dagster.exports.selection import Selection
from expirytrack_dagster.exports.xlsx import HEADER
from expirytrack_dagster_tests.exports.conftest import expected_rows


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
