"""MetaTrader 5: one tab-separated bar file per contract in MT5's import layout, row for row."""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from expirytrack_dagster.exports.formats import WriteOptions
from expirytrack_dagster.exports.metatrader import HEADER, write
from expirytrack_dagster.exports.run import export
from expirytrack_dagster.exports.selection import Selection
from expirytrack_dagster.exports.tickers import TickerCollision, ticker
from expirytrack_dagster_tests.exports.conftest import expected_rows
from expirytrack_dagster_tests.exports.writer_rows import (
    CONTRACTS,
    Contract,
    TableSource,
    stream_rows,
)


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


def test_writer_alone_one_file_per_contract_equal_to_its_rows(tmp_path: Path) -> None:
    table = stream_rows()
    files = write(
        TableSource(table, batch_rows=5),
        tmp_path,
        stem="s",
        options=WriteOptions(),
        progress=lambda rows: None,
    )
    order = list(dict.fromkeys(table["instrument_key"].to_pylist()))
    by_key = {c.instrument_key: c for c in CONTRACTS}
    assert [f.path.name for f in files] == [f"s_{by_key[key].ticker}.csv" for key in order]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f.path.name for f in files)
    rows = table.to_pylist()
    for file, key in zip(files, order, strict=True):
        lines = file.path.read_text().splitlines()
        assert (
            lines[0] == "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>"
        )
        want = [row for row in rows if row["instrument_key"] == key]
        assert file.rows == len(lines) - 1 == len(want)
        for line, row in zip(lines[1:], want, strict=True):
            day, minute, *prices, tickvol, vol, spread = line.split("\t")
            stamp = datetime.strptime(f"{day} {minute}", "%Y.%m.%d %H:%M:%S")
            assert stamp == row["timestamp"].replace(tzinfo=None)  # IST wall clock
            assert [float(p) for p in prices] == [row[c] for c in ("open", "high", "low", "close")]
            assert int(tickvol) == int(vol) == row["volume"]
            assert spread == "0"


def test_two_contracts_on_one_ticker_never_share_a_file(tmp_path: Path) -> None:
    first = Contract("NIFTY", date(2025, 8, 7), "FUT", None, False, "NSE_FO|1|07-08-2025")
    second = Contract("NIFTY", date(2025, 8, 28), "FUT", None, False, "NSE_FO|2|28-08-2025")
    table = stream_rows((first, second), sessions=(date(2025, 8, 6),))
    with pytest.raises(TickerCollision, match="NIFTY25AUGFUT"):
        write(
            TableSource(table), tmp_path, stem="s", options=WriteOptions(), progress=lambda n: None
        )


def test_a_contract_met_again_after_another_never_overwrites_its_file(tmp_path: Path) -> None:
    # Out of the stream's order (A, B, A): the second A must not replace A's first bars.
    table = stream_rows(CONTRACTS[:2])
    first, second = table.slice(0, 14), table.slice(14)
    shuffled = pa.concat_tables([first.slice(0, 7), second, first.slice(7)])
    with pytest.raises(FileExistsError):
        write(
            TableSource(shuffled),
            tmp_path,
            stem="s",
            options=WriteOptions(),
            progress=lambda n: None,
        )
