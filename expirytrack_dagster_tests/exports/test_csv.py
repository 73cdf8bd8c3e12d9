"""CSV: one file or one per contract, ISO timestamps with +05:30, optional gzip; read back by pandas."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from expirytrack_dagster.exports.formats import WriteOptions
from expirytrack_dagster.exports.run import export
from expirytrack_dagster.exports.selection import Selection
from expirytrack_dagster.exports.tickers import ticker
from expirytrack_dagster_tests.exports.conftest import assert_same_rows, expected_rows


def read_csv(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, float_precision="round_trip")
    assert frame["timestamp"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:00\+05:30").all()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"]).dt.tz_convert("Asia/Kolkata")
    frame["expiry"] = pd.to_datetime(frame["expiry"]).dt.date
    return frame


@pytest.mark.parametrize("gzip", [False, True])
def test_one_file_round_trip(export_database: Path, tmp_path: Path, gzip: bool) -> None:
    result = export(
        Selection(("NIFTY",), interval="day"),
        "csv",
        tmp_path / "out",
        database=export_database,
        options=WriteOptions(gzip=gzip),
    )
    (file,) = result.manifest.files
    assert file.path.name == f"expirytrack_SYNTHETIC_NIFTY_day.csv{'.gz' if gzip else ''}"
    if gzip:
        assert file.path.read_bytes()[:2] == b"\x1f\x8b"
    want = expected_rows(export_database, "day")
    assert file.rows == len(want)
    assert_same_rows(read_csv(file.path), want)


def test_one_file_per_contract_named_by_ticker(export_database: Path, tmp_path: Path) -> None:
    result = export(
        Selection(("NIFTY",), interval="5minute"),
        "csv",
        tmp_path / "out",
        database=export_database,
        options=WriteOptions(per_contract=True),
    )
    want = expected_rows(export_database, "5minute")
    assert len(result.manifest.files) == want["instrument_key"].nunique() == 13
    parts = []
    for file in result.manifest.files:
        frame = read_csv(file.path)
        assert frame["instrument_key"].nunique() == 1 and len(frame) == file.rows
        row = frame.iloc[0]
        strike = None if pd.isna(row["strike"]) else row["strike"]
        name = ticker(
            row["underlying"], row["expiry"], row["instrument_type"], strike, row["weekly"]
        )
        assert file.path.name == f"expirytrack_SYNTHETIC_NIFTY_5minute_{name}.csv"
        parts.append(frame)
    assert_same_rows(pd.concat(parts), want)
