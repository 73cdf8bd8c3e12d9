"""AmiBroker: the import file parsed by the rules of its own format definition, row for row."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from expirytrack_dagster.exports.run import export
from expirytrack_dagster.exports.selection import Selection
from expirytrack_dagster.exports.tickers import ticker
from expirytrack_dagster_tests.exports.conftest import MONTHLY, WEEKLY, expected_rows

# AmiBroker's ASCII importer field names and what each holds (AmiBroker's documented $FORMAT).
FIELD_PARSERS = {
    "Ticker": str,
    "Date_YMD": lambda text: pd.Timestamp(text).date(),
    "Time": str,
    "Open": float,
    "High": float,
    "Low": float,
    "Close": float,
    "Volume": float,
    "OpenInt": float,
}


def parse_definition(path: Path) -> dict[str, str]:
    commands = {}
    for line in path.read_text().splitlines():
        if line.startswith("$"):
            name, _, value = line.partition(" ")
            commands[name] = value
    return commands


def parse_import(data: Path, definition: Path) -> list[dict]:
    """A reader of AmiBroker's ASCII import: columns from $FORMAT, $SKIPLINES, $SEPARATOR."""
    commands = parse_definition(definition)
    fields = commands["$FORMAT"].split(",")
    separator = commands["$SEPARATOR"]
    lines = data.read_text().splitlines()[int(commands["$SKIPLINES"]) :]
    return [
        {f: FIELD_PARSERS[f](v) for f, v in zip(fields, line.split(separator), strict=True)}
        for line in lines
    ]


def test_import_file_matches_the_database(export_database: Path, tmp_path: Path) -> None:
    result = export(
        Selection(("NIFTY",), interval="15minute"),
        "amibroker",
        tmp_path / "out",
        database=export_database,
    )
    data, definition = (f.path for f in result.manifest.files)
    assert data.suffix == ".txt" and definition.suffix == ".format"
    commands = parse_definition(definition)
    assert commands["$FORMAT"] == "Ticker,Date_YMD,Time,Open,High,Low,Close,Volume,OpenInt"
    assert commands["$AUTOADD"] == "1" and commands["$CONT"] == "1"
    rows = parse_import(data, definition)
    want = expected_rows(export_database, "15minute")
    assert len(rows) == len(want) == result.manifest.files[0].rows
    for got, (_, row) in zip(rows, want.iterrows(), strict=True):
        strike = None if pd.isna(row["strike"]) else row["strike"]
        name = ticker("NIFTY", row["expiry"], row["instrument_type"], strike, row["weekly"])
        assert got["Ticker"] == name
        assert got["Date_YMD"] == row["timestamp"].date()
        assert got["Time"] == row["timestamp"].strftime("%H:%M:%S")
        assert (got["Open"], got["High"], got["Low"], got["Close"]) == (
            row["open"],
            row["high"],
            row["low"],
            row["close"],
        )
        assert (got["Volume"], got["OpenInt"]) == (row["volume"], row["open_interest"])


def test_same_strike_of_two_expiries_gets_two_tickers(
    export_database: Path, tmp_path: Path
) -> None:
    result = export(
        Selection(("NIFTY",), types=("CE",), strike_min=24500, strike_max=24500, interval="day"),
        "amibroker",
        tmp_path / "out",
        database=export_database,
    )
    data, definition = (f.path for f in result.manifest.files)
    tickers = {row["Ticker"] for row in parse_import(data, definition)}
    assert (
        tickers
        == {
            ticker("NIFTY", WEEKLY, "CE", 24500.0, True),
            ticker("NIFTY", MONTHLY, "CE", 24500.0, False),
        }
        == {"NIFTY2581424500CE", "NIFTY25AUG24500CE"}
    )
