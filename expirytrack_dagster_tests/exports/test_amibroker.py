"""AmiBroker: the import file parsed by the rules of its own format definition, row for row."""

from __future__ import annotations

import re
from datetime import date, time
from pathlib import Path

import pandas as pd
import pytest

from expirytrack_dagster.exports.amibroker import FORMAT_DEFINITION, write
from expirytrack_dagster.exports.formats import WriteOptions
from expirytrack_dagster.exports.run import export
from expirytrack_dagster.exports.selection import Selection
from expirytrack_dagster.exports.tickers import TickerCollision, ticker
from expirytrack_dagster_tests.exports.conftest import MONTHLY, WEEKLY, expected_rows
from expirytrack_dagster_tests.exports.writer_rows import (
    CONTRACTS,
    Contract,
    TableSource,
    stream_rows,
)

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


# A reader written from AmiBroker's ASCII importer documentation: Date_YMD is year, month, day in
# that order, separated by "-", "/", "\" or nothing; Time is HH:MM:SS, HH:MM or HHMMSS.
def _ymd(text: str) -> date:
    parts = (
        re.split(r"[-/\\]", text)
        if re.search(r"[-/\\]", text)
        else [
            text[:-4],
            text[-4:-2],
            text[-2:],
        ]
    )
    year, month, day = (int(part) for part in parts)
    return date(year, month, day)


def _time(text: str) -> time:
    digits = text.replace(":", "")
    return time(int(digits[:2]), int(digits[2:4]), int(digits[4:6] or 0))


DOCUMENTED_FIELDS = {
    "Ticker": str,
    "Date_YMD": _ymd,
    "Time": _time,
    "Open": float,
    "High": float,
    "Low": float,
    "Close": float,
    "Volume": float,
    "OpenInt": float,
}


def read_as_amibroker(data: Path, definition: Path) -> list[dict]:
    """Each data line as AmiBroker reads it: fields named by $FORMAT (spaces around commas
    allowed), split by $SEPARATOR, after $SKIPLINES lines."""
    commands = parse_definition(definition)
    fields = [name.strip() for name in commands["$FORMAT"].split(",")]
    assert set(fields) <= set(DOCUMENTED_FIELDS), fields
    lines = data.read_text(encoding="ascii").splitlines()[int(commands["$SKIPLINES"]) :]
    return [
        {
            name: DOCUMENTED_FIELDS[name](value)
            for name, value in zip(fields, line.split(commands["$SEPARATOR"]), strict=True)
        }
        for line in lines
    ]


def test_writer_alone_every_line_equals_its_input_row(tmp_path: Path) -> None:
    table = stream_rows()
    counted = []
    files = write(
        TableSource(table, batch_rows=5),
        tmp_path,
        stem="s",
        options=WriteOptions(),
        progress=counted.append,
    )
    assert [(f.path.name, f.rows) for f in files] == [("s.txt", table.num_rows), ("s.format", 0)]
    assert sum(counted) == table.num_rows
    assert files[1].path.read_text() == FORMAT_DEFINITION
    got = read_as_amibroker(files[0].path, files[1].path)
    tickers = {c.instrument_key: c.ticker for c in CONTRACTS}
    want = [
        {
            "Ticker": tickers[row["instrument_key"]],
            "Date_YMD": row["timestamp"].date(),
            "Time": row["timestamp"].time(),
            "Open": row["open"],
            "High": row["high"],
            "Low": row["low"],
            "Close": row["close"],
            "Volume": row["volume"],
            "OpenInt": row["open_interest"],
        }
        for row in table.to_pylist()
    ]
    assert got == want
    assert {line["Ticker"] for line in got} == {
        "NIFTY2581424500CE",
        "NIFTY2581424500PE",
        "NIFTY25AUG24500CE",
        "NIFTY25AUGFUT",
        "SENSEX2581280500.5CE",
    }


def test_two_contracts_on_one_ticker_stop_the_export(tmp_path: Path) -> None:
    # Two "monthly" expiries in one month: the convention cannot tell them apart.
    first = Contract("NIFTY", date(2025, 8, 7), "CE", 24500.0, False, "NSE_FO|1|07-08-2025")
    second = Contract("NIFTY", date(2025, 8, 28), "CE", 24500.0, False, "NSE_FO|2|28-08-2025")
    table = stream_rows((first, second), sessions=(date(2025, 8, 6),))
    with pytest.raises(TickerCollision, match="NIFTY25AUG24500CE"):
        write(
            TableSource(table), tmp_path, stem="s", options=WriteOptions(), progress=lambda n: None
        )
