"""Schema versioning: a database made before versioning is upgraded in place with every row intact."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from expirytrack_dagster.ops.tables import table_checksums
from expirytrack_dagster.storage.database import connect
from expirytrack_dagster.storage.schema import (
    CURRENT_VERSION,
    MIGRATIONS,
    SchemaError,
    migrate,
    schema_version,
)

VERSION_1_DDL = """
CREATE TABLE IF NOT EXISTS main.expiries (
    partition_key VARCHAR NOT NULL,
    underlying_symbol VARCHAR NOT NULL,
    underlying_key VARCHAR NOT NULL,
    expiry DATE NOT NULL,
    is_monthly BOOLEAN NOT NULL,
    data_source VARCHAR NOT NULL,
    checked_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS main.contracts (
    partition_key VARCHAR NOT NULL,
    expired_instrument_key VARCHAR NOT NULL,
    instrument_type VARCHAR NOT NULL,
    underlying_symbol VARCHAR NOT NULL,
    underlying_key VARCHAR NOT NULL,
    expiry DATE NOT NULL,
    strike_price DOUBLE,
    lot_size INTEGER NOT NULL,
    tick_size DOUBLE NOT NULL,
    weekly BOOLEAN,
    trading_symbol VARCHAR NOT NULL,
    exchange_token VARCHAR NOT NULL,
    name VARCHAR,
    segment VARCHAR,
    exchange VARCHAR,
    underlying_type VARCHAR,
    freeze_quantity INTEGER,
    minimum_lot INTEGER
);
CREATE TABLE IF NOT EXISTS main.candles (
    partition_key VARCHAR NOT NULL,
    expired_instrument_key VARCHAR NOT NULL,
    "interval" VARCHAR NOT NULL,
    "timestamp" TIMESTAMPTZ NOT NULL,
    open DOUBLE NOT NULL,
    high DOUBLE NOT NULL,
    low DOUBLE NOT NULL,
    close DOUBLE NOT NULL,
    volume BIGINT NOT NULL,
    open_interest BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS main.candle_fetch_status (
    partition_key VARCHAR NOT NULL,
    expired_instrument_key VARCHAR NOT NULL,
    trading_date DATE NOT NULL,
    status VARCHAR NOT NULL,
    candle_count INTEGER NOT NULL,
    error VARCHAR,
    fetched_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS main.coverage_report (
    partition_key VARCHAR NOT NULL,
    underlying_symbol VARCHAR NOT NULL,
    expiry DATE NOT NULL,
    is_monthly BOOLEAN,
    data_source VARCHAR,
    contracts BIGINT NOT NULL,
    candles BIGINT NOT NULL,
    contract_days BIGINT NOT NULL,
    days_complete BIGINT NOT NULL,
    days_no_trades BIGINT NOT NULL,
    days_failed BIGINT NOT NULL,
    failed_contracts BIGINT NOT NULL,
    completeness_pct DOUBLE,
    check_status VARCHAR NOT NULL,
    failed_checks VARCHAR,
    verdict VARCHAR NOT NULL,
    collected_at TIMESTAMPTZ,
    reported_at TIMESTAMPTZ NOT NULL
);
COMMENT ON COLUMN main.candle_fetch_status.status IS 'complete | no_trades | failed: what the API answered';
"""
"""The schema as released before versioning (copied, not imported: the code may not change it)."""

VERSION_1_ROWS = """
INSERT INTO expiries VALUES
    ('NIFTY_2025-08-28', 'NIFTY', 'NSE_INDEX|Nifty 50', DATE '2025-08-28', true, 'upstox',
     TIMESTAMPTZ '2025-08-29 10:00:00+05:30');
INSERT INTO contracts VALUES
    ('NIFTY_2025-08-28', 'NSE_FO|64103|28-08-2025', 'FUT', 'NIFTY', 'NSE_INDEX|Nifty 50',
     DATE '2025-08-28', NULL, 75, 10.0, NULL, 'NIFTY25AUGFUT', '64103', 'NIFTY', 'NSE_FO', 'NSE',
     'INDEX', 1800, 75),
    ('NIFTY_2025-08-28', 'NSE_FO|40120|28-08-2025', 'CE', 'NIFTY', 'NSE_INDEX|Nifty 50',
     DATE '2025-08-28', 24500.0, 75, 5.0, false, 'NIFTY25AUG24500CE', '40120', 'NIFTY', 'NSE_FO',
     'NSE', 'INDEX', 1800, 75);
INSERT INTO candles
    SELECT 'NIFTY_2025-08-28', 'NSE_FO|64103|28-08-2025', '1minute',
           TIMESTAMPTZ '2025-08-01 09:15:00+05:30' + i * INTERVAL 1 MINUTE,
           24500 + i, 24510 + i, 24490 + i, 24505 + i, 1000 + i, 50000 + i
    FROM range(750) t(i);
INSERT INTO candle_fetch_status VALUES
    ('NIFTY_2025-08-28', 'NSE_FO|64103|28-08-2025', DATE '2025-08-01', 'complete', 375, NULL,
     TIMESTAMPTZ '2025-08-29 10:05:00+05:30'),
    ('NIFTY_2025-08-28', 'NSE_FO|64103|28-08-2025', DATE '2025-08-04', 'complete', 375, NULL,
     TIMESTAMPTZ '2025-08-29 10:05:00+05:30'),
    ('NIFTY_2025-08-28', 'NSE_FO|40120|28-08-2025', DATE '2025-08-01', 'no_trades', 0, NULL,
     TIMESTAMPTZ '2025-08-29 10:05:00+05:30'),
    ('NIFTY_2025-08-28', 'NSE_FO|40120|28-08-2025', DATE '2025-08-04', 'unconfirmed', 0, NULL,
     TIMESTAMPTZ '2025-08-29 10:05:00+05:30'),
    ('NIFTY_2025-08-28', 'NSE_FO|40120|28-08-2025', DATE '2025-08-05', 'failed', 0,
     'candles: 503 Service Unavailable', NULL);
INSERT INTO coverage_report VALUES
    ('NIFTY_2025-08-28', 'NIFTY', DATE '2025-08-28', true, 'upstox', 2, 750, 5, 2, 1, 1, 1, 60.0,
     'passed', NULL, 'incomplete', TIMESTAMPTZ '2025-08-29 10:05:00+05:30',
     TIMESTAMPTZ '2025-08-29 10:06:00+05:30');
"""


def _version_1_database(path: Path) -> dict[str, tuple[int, str]]:
    """A file as expirytrack made it before versioning; the checksums of its tables."""
    with duckdb.connect(str(path)) as db:
        db.execute(VERSION_1_DDL)
        db.execute(VERSION_1_ROWS)
        return table_checksums(db)


def _columns(path: Path) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as db:
        return db.execute(
            "SELECT table_name, column_index, column_name, data_type, is_nullable, comment "
            "FROM duckdb_columns() WHERE schema_name = 'main' AND table_name != 'schema_version' "
            "ORDER BY ALL"
        ).fetchall()


def test_first_open_migrates_a_version_1_database_in_place(tmp_path: Path) -> None:
    database = tmp_path / "expirytrack.duckdb"
    before = _version_1_database(database)
    assert before["candles"][0] == 750 and before["candle_fetch_status"][0] == 5
    with duckdb.connect(str(database), read_only=True) as db:
        assert schema_version(db) is None  # version 1 tables, no version recorded

    with connect(database) as db:  # the first write-open upgrades it
        after = table_checksums(db)
        assert schema_version(db) == CURRENT_VERSION
        history = db.execute(
            "SELECT version, description FROM schema_version ORDER BY version"
        ).fetchall()
        statuses = db.execute(
            "SELECT status FROM candle_fetch_status ORDER BY trading_date, status"
        ).fetchall()
    for table, counted in before.items():
        assert after[table] == counted, table  # every row survives, unchanged
    assert after["api_usage"] == (0, "0")
    assert [v for v, _ in history] == list(range(1, CURRENT_VERSION + 1))
    assert "before versioning" in history[0][1]
    assert sorted(s for (s,) in statuses) == [
        "complete",
        "complete",
        "failed",
        "no_trades",
        "unconfirmed",
    ]


def test_migrating_twice_is_a_no_op(tmp_path: Path) -> None:
    database = tmp_path / "expirytrack.duckdb"
    _version_1_database(database)
    with duckdb.connect(str(database)) as db:
        applied = migrate(db)
        assert [m.version for m in applied] == [m.version for m in MIGRATIONS]
        first = table_checksums(db)
        assert migrate(db) == []
        assert table_checksums(db) == first  # schema_version included: no row added
    size = database.stat().st_size
    with connect(database) as db:
        assert table_checksums(db) == first
    assert database.stat().st_size == size


def test_a_new_database_and_an_upgraded_one_have_the_same_schema(tmp_path: Path) -> None:
    fresh, upgraded = tmp_path / "fresh.duckdb", tmp_path / "upgraded.duckdb"
    with connect(fresh) as db:
        assert schema_version(db) == CURRENT_VERSION
    _version_1_database(upgraded)
    with connect(upgraded):
        pass
    assert _columns(fresh) == _columns(upgraded)


def test_read_only_opens_leave_an_old_database_as_it_is(tmp_path: Path) -> None:
    database = tmp_path / "expirytrack.duckdb"
    before = _version_1_database(database)
    with connect(database, read_only=True) as db:
        assert table_checksums(db) == before
        assert schema_version(db) is None


def test_a_database_from_a_newer_expirytrack_is_refused(tmp_path: Path) -> None:
    database = tmp_path / "expirytrack.duckdb"
    with connect(database) as db:
        db.execute(
            "INSERT INTO schema_version (version, description) VALUES (?, 'from the future')",
            [CURRENT_VERSION + 1],
        )
    with pytest.raises(SchemaError, match="newer than this expirytrack knows"), connect(database):
        pass


def test_a_failed_migration_changes_nothing(tmp_path: Path) -> None:
    database = tmp_path / "expirytrack.duckdb"
    before = _version_1_database(database)
    with duckdb.connect(str(database)) as db:
        db.execute("CREATE VIEW api_usage AS SELECT 1 AS x")  # blocks the api_usage step
        with pytest.raises(duckdb.Error):
            migrate(db)
        db.execute("DROP VIEW api_usage")
        assert schema_version(db) is None
        assert table_checksums(db) == before


def _version_2_database(path: Path) -> dict[str, tuple[int, str]]:
    """A file as expirytrack made it at schema version 2 (api_usage, no index_candles)."""
    _version_1_database(path)
    with duckdb.connect(str(path)) as db:
        db.execute(
            "CREATE TABLE main.schema_version (version INTEGER NOT NULL, description VARCHAR "
            "NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)"
        )
        (step_2,) = [m for m in MIGRATIONS if m.version == 2]  # released: frozen
        for statement in step_2.statements:
            db.execute(statement)
        db.execute(
            "INSERT INTO schema_version (version, description) VALUES (1, 'version 1 created'), "
            "(2, 'api_usage')"
        )
        db.execute(
            "INSERT INTO api_usage VALUES ('run-1', 'NIFTY_2025-08-28', "
            "TIMESTAMPTZ '2025-08-29 10:05:00+05:30', 'upstox', 12, '{\"candles\": 12}', 12, 0, 0, "
            "0, 40.0, 90.0, 750, 62.5, 0.0, 12, 2000)"
        )
        return table_checksums(db)


def test_a_version_2_database_gains_index_candles_in_place(tmp_path: Path) -> None:
    database = tmp_path / "expirytrack.duckdb"
    before = _version_2_database(database)
    with duckdb.connect(str(database), read_only=True) as db:
        assert schema_version(db) == 2
    with connect(database) as db:
        after = table_checksums(db)
        history = db.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        comment = db.execute(
            "SELECT comment FROM duckdb_columns() WHERE table_name = 'index_candles' "
            "AND column_name = 'timestamp'"
        ).fetchall()
    for table, counted in before.items():
        if table != "schema_version":
            assert after[table] == counted, table  # every row survives, unchanged
    assert before["api_usage"][0] == 1
    assert after["index_candles"] == (0, "0")
    assert [v for (v,) in history] == list(range(1, CURRENT_VERSION + 1))  # 3 and any later
    assert "IST" in comment[0][0]
    fresh = tmp_path / "fresh.duckdb"
    with connect(fresh):
        pass
    assert _columns(fresh) == _columns(database)
