"""Selections: what each part matches, the errors that name what matched nothing, and bars made by
DuckDB equal to the research layer's pandas resampling."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from expirytrack_dagster.exports.rows import ROW_SCHEMA, RowSource
from expirytrack_dagster.exports.selection import (
    CHUNK_ROWS,
    ExportError,
    Selection,
    count_rows,
    parts,
    register,
    resolve,
    rows_query,
)
from expirytrack_dagster.storage.database import connect, open_connection
from expirytrack_dagster_tests.exports.conftest import (
    MONTHLY,
    WEEKLY,
    assert_same_rows,
    build_export_database,
    expected_rows,
)


def stream(
    database: Path, selection: Selection, max_rows: int = CHUNK_ROWS
) -> tuple[pd.DataFrame, int, list[pa.RecordBatch]]:
    db = open_connection(database, read_only=True)
    try:
        db.execute("SET TimeZone = 'Asia/Kolkata'")
        resolved = resolve(db, selection)
        register(db, resolved)
        total = count_rows(db, resolved)
        runs = parts(db, resolved, max_rows)
        batches = list(RowSource(db, *rows_query(resolved), runs).batches(rows=64))
    finally:
        db.close()
    frame = pa.Table.from_batches(batches, schema=ROW_SCHEMA).to_pandas()
    return frame, total, batches


@pytest.mark.parametrize("interval", ["1minute", "3minute", "10minute", "60minute", "day"])
def test_bars_equal_the_pandas_reference(export_database: Path, interval: str) -> None:
    frame, total, batches = stream(export_database, Selection(("NIFTY",), interval=interval))
    assert all(b.schema == ROW_SCHEMA for b in batches)
    assert total == len(frame)
    assert_same_rows(frame, expected_rows(export_database, interval))


@pytest.mark.parametrize("interval", ["1minute", "15minute"])
def test_runs_of_a_few_contracts_stream_the_same_rows_in_the_same_order(
    export_database: Path, interval: str
) -> None:
    # Each partition sorted whole, then cut into runs of at most 500 stored candles (a few
    # contracts each, and a contract bigger than that alone): the same rows, in the same order.
    whole, total, _ = stream(export_database, Selection(("NIFTY",), interval=interval), 10**9)
    cut, _, _ = stream(export_database, Selection(("NIFTY",), interval=interval), 500)
    assert len(whole) == total > 0
    pd.testing.assert_frame_equal(cut, whole)
    order = ["underlying", "expiry", "instrument_type", "strike", "instrument_key", "timestamp"]
    assert whole.equals(whole.sort_values(order, na_position="last").reset_index(drop=True))
    with open_connection(export_database, read_only=True) as db:
        resolved = resolve(db, Selection(("NIFTY",), interval=interval))
        register(db, resolved)
        runs = [c for p in parts(db, resolved, 500) for c in p.chunks]
        one = [c for p in parts(db, resolved, 10**9) for c in p.chunks]
    assert len(one) == len(resolved.partitions) < len(runs)  # the cut really made runs
    covered = [o for first, last in runs for o in range(first, last + 1)]
    assert covered == list(range(len(resolved.contracts)))  # every contract once, in order


def test_bars_start_at_the_session_open_and_skip_untraded_minutes(export_database: Path) -> None:
    frame, _, _ = stream(export_database, Selection(("NIFTY",), types=("CE",), interval="5minute"))
    minutes = frame["timestamp"].dt.strftime("%H:%M").unique()
    assert list(minutes) == ["09:15", "09:20", "09:25", "09:30", "09:35", "09:40", "09:45", "09:50"]
    assert str(frame["timestamp"].dt.tz) == "Asia/Kolkata"
    # CE 24600 misses every third minute: its first 5-minute bar sums 3 candles' volume, not 5.
    raw, _, _ = stream(export_database, Selection(("NIFTY",), types=("CE",), strike_min=24600))
    first = raw[(raw["expiry"] == WEEKLY) & (raw["timestamp"] < "2025-08-13 09:20+05:30")]
    assert len(first) == 3
    bar = frame[(frame["strike"] == 24600) & (frame["expiry"] == WEEKLY)].iloc[0]
    assert bar["volume"] == first["volume"].sum()
    assert bar["close"] == first["close"].iloc[-1]


@pytest.mark.parametrize("interval", ["10minute", "day"])
def test_a_special_session_has_bars_from_its_own_open(tmp_path: Path, interval: str) -> None:
    # Muhurat trading 2024-11-01 opened at 18:00 IST: 10-minute bars start 18:00, 18:10, ... (at
    # 09:15 alignment they would start 17:55), and the day bar opens at 18:00.
    database = build_export_database(tmp_path / "muhurat.duckdb")
    with connect(database) as db:
        db.execute(
            """
            INSERT INTO main.candles BY NAME
            SELECT k.partition_key, k.expired_instrument_key, '1minute' AS "interval",
                   TIMESTAMPTZ '2024-11-01 18:00:00+05:30' + to_minutes(m) AS "timestamp",
                   100.0 + m AS open, 101.0 + m AS high, 99.0 + m AS low, 100.5 + m AS close,
                   75 * (m + 1) AS volume, 7500 + 75 * m AS open_interest
            FROM main.contracts k, range(0, 60) AS t(m)
            WHERE k.instrument_type = 'FUT'
            """
        )
    where = "k.instrument_type = 'FUT' AND c.\"timestamp\" < TIMESTAMPTZ '2025-01-01 00:00+05:30'"
    selection = Selection(("NIFTY",), types=("FUT",), end=date(2024, 12, 31), interval=interval)
    frame, total, _ = stream(database, selection)
    assert total == len(frame)
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2024-11-01 18:00", tz="Asia/Kolkata")
    assert_same_rows(frame, expected_rows(database, interval, where))


def test_rows_come_contract_by_contract_in_the_documented_order(export_database: Path) -> None:
    frame, _, _ = stream(export_database, Selection(("NIFTY",)))
    keys = frame["instrument_key"]
    assert keys.ne(keys.shift()).sum() == keys.nunique()  # each contract's rows consecutive
    order = ["underlying", "expiry", "instrument_type", "strike", "instrument_key", "timestamp"]
    ordered = frame.sort_values(order, na_position="last", kind="stable")
    assert ordered.index.tolist() == frame.index.tolist()


def test_expiry_list_range_and_kind(export_database: Path) -> None:
    def expiries(selection: Selection) -> set[date]:
        return set(stream(export_database, selection)[0]["expiry"])

    assert expiries(Selection(("NIFTY",), expiries=(MONTHLY,))) == {MONTHLY}
    assert expiries(Selection(("NIFTY",), expiry_kind="weekly")) == {WEEKLY}
    assert expiries(Selection(("NIFTY",), expiry_kind="monthly")) == {MONTHLY}
    assert expiries(Selection(("NIFTY",), expiry_from=date(2025, 8, 15))) == {MONTHLY}
    assert expiries(Selection(("nifty",), expiry_to=WEEKLY)) == {WEEKLY}


def test_types_strikes_and_time_range(export_database: Path) -> None:
    frame, _, _ = stream(
        export_database,
        Selection(
            ("NIFTY",),
            types=("PE", "FUT"),
            strike_min=24500,
            strike_max=24600,
            start="2025-08-14 09:20",
            end=date(2025, 8, 14),
        ),
    )
    assert set(frame["instrument_type"]) == {"PE", "FUT"}
    assert set(frame["strike"].dropna()) == {24500.0, 24600.0}  # futures are never strike-filtered
    assert frame["timestamp"].min() == pd.Timestamp("2025-08-14 09:20", tz="Asia/Kolkata")
    assert frame["timestamp"].max() < pd.Timestamp("2025-08-15", tz="Asia/Kolkata")


def test_atm_plus_minus_n_strikes_around_the_forward(export_database: Path) -> None:
    # The candles price a forward of 24,530: the ATM strike is 24,500 in both expiries.
    narrow, _, _ = stream(
        export_database, Selection(("NIFTY",), types=("CE", "PE"), atm=0, atm_at="2025-08-13 09:40")
    )
    assert set(narrow["strike"]) == {24500.0}
    assert set(narrow["expiry"]) == {WEEKLY, MONTHLY}
    wide, _, _ = stream(export_database, Selection(("NIFTY",), atm=1, atm_at="2025-08-13 09:40"))
    assert set(wide["strike"].dropna()) == {24400.0, 24500.0, 24600.0}
    assert "FUT" in set(wide["instrument_type"])


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        (dict(underlyings=("BANKNIFTY",)), "no collected partition of BANKNIFTY"),
        (dict(expiries=(date(2025, 8, 21),)), "expires on 2025-08-21"),
        (dict(expiry_from=date(2025, 9, 1)), "expires between 2025-09-01"),
        (dict(expiries=(WEEKLY,), expiry_kind="monthly"), "is monthly"),
        (dict(strike_min=30000), "no listed strike lies between 30000"),
        (dict(types=("PE",), start="2026-01-01"), "no candles"),
        (dict(atm=2, atm_at="2025-08-16 10:00"), "ATM of NIFTY_2025-08-14"),
    ],
)
def test_a_part_that_matches_nothing_is_named(
    export_database: Path, tmp_path: Path, selection: dict, message: str
) -> None:
    from expirytrack_dagster.exports.run import export

    selection.setdefault("underlyings", ("NIFTY",))
    with pytest.raises(ExportError, match=message):
        export(Selection(**selection), "csv", tmp_path / "out", database=export_database)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(underlyings=()), "names no underlying"),
        (dict(types=("XX",)), "contract types XX"),
        (dict(interval="2minute"), "interval '2minute'"),
        (dict(expiry_kind="quarterly"), "expiry kind"),
        (dict(atm=3), "needs the reference minute"),
        (dict(atm=3, atm_at="2025-08-13 10:00", strike_min=1.0), "not both"),
        (dict(atm=2, atm_at="2025-08-13 10:00", types=("FUT",)), "only futures"),
        (dict(strike_min=2.0, strike_max=1.0), "strike range 2 to 1 is empty"),
        (dict(start="2025-08-14", end="2025-08-13"), "time range"),
        (dict(expiries=(WEEKLY,), expiry_to=MONTHLY), "not both"),
    ],
)
def test_invalid_selections_are_refused_with_the_reason(fields: dict, message: str) -> None:
    fields.setdefault("underlyings", ("NIFTY",))
    with pytest.raises(ExportError, match=message):
        Selection(**fields)
