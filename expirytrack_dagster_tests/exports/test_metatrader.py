"""MetaTrader 5: one tab-separated bar file per contract in MT5's import layout, row for row."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from expirytrack_dagster.exports.metatrader import HEADER
from expirytrack_dagster.exports.run import export
from expirytrack_dagster.exports.selection import Selection
from expirytrack_dagster.exports.tickers import ticker
from expirytrack_dagster_tests.exports.conftest import expected_rows


def test_bar_files_match_the_database(export_database: Path, tmp_path: Path) -> None:
    result = export(
        Selection(("NIFTY",), interval="30minute"),
        "metatrader5",
        tmp_path / "out",
        database=export_database,
    )
    want = expected_rows(export_database, "30minute")
    by_name = {f.path.name: f for f in result.manifest.files}
    assert len(by_name) == want["instrument_key"].nunique()
    for _, rows in want.groupby("instrument_key", sort=False):
        first = rows.iloc[0]
        strike = None if pd.isna(first["strike"]) else first["strike"]
        name = ticker("NIFTY", first["expiry"], first["instrument_type"], strike, first["weekly"])
        file = by_name[f"expirytrack_SYNTHETIC_NIFTY_30minute_{name}.csv"]
        with file.path.open(newline="") as handle:
            lines = list(csv.reader(handle, delimiter="\t"))
        assert tuple(lines[0]) == HEADER
        assert len(lines) - 1 == len(rows) == file.rows
        for line, (_, row) in zip(lines[1:], rows.iterrows(), strict=True):
            assert line[0] == row["timestamp"].strftime("%Y.%m.%d")
            assert line[1] == row["timestamp"].strftime("%H:%M:%S")
            assert [float(v) for v in line[2:6]] == [
                row[c] for c in ("open", "high", "low", "close")
            ]
            assert int(line[6]) == int(line[7]) == row["volume"]
            assert line[8] == "0"
