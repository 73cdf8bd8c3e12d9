"""Schema version 4: a version 3 database gains the research tables in place, typed and documented."""

from __future__ import annotations

from pathlib import Path

import duckdb

from expirytrack_dagster.storage.database import connect
from expirytrack_dagster.storage.schema import MIGRATIONS, TABLES_V1, schema_version

RESEARCH_TABLES = ("option_chain_daily", "chain_metrics", "option_greeks", "continuous_futures")


def _version_3_database(path: Path) -> None:
    """Versions 1 to 3 built by their own (released, frozen) statements, one candle stored."""
    with duckdb.connect(str(path)) as db:
        db.execute(
            "CREATE TABLE main.schema_version (version INTEGER NOT NULL, description VARCHAR "
            "NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)"
        )
        for ddl in TABLES_V1.values():
            db.execute(ddl)
        for step in MIGRATIONS:
            if step.version <= 3:
                for statement in step.statements:
                    db.execute(statement)
        db.execute(
            "INSERT INTO schema_version (version, description) VALUES (1, 'v1'), (2, 'v2'), "
            "(3, 'v3')"
        )
        db.execute(
            "INSERT INTO candles VALUES ('NIFTY_2025-08-28', 'NSE_FO|1|28-08-2025', '1minute', "
            "TIMESTAMPTZ '2025-08-14 10:30:00+05:30', 1, 2, 0.5, 1.5, 75, 150)"
        )


def test_a_version_3_database_gains_the_research_tables_in_place(tmp_path: Path) -> None:
    database = tmp_path / "expirytrack.duckdb"
    _version_3_database(database)
    with connect(database) as db:
        version = schema_version(db)
        candles = db.execute("SELECT count(*) FROM candles").fetchall()[0][0]
        columns = db.execute(
            "SELECT table_name, column_name, data_type, comment FROM duckdb_columns() "
            "WHERE table_name IN ?",
            [list(RESEARCH_TABLES)],
        ).fetchall()
    assert version >= 4
    assert candles == 1
    types = {(table, column): kind for table, column, kind, _ in columns}
    comments = {(table, column): text for table, column, _, text in columns}
    assert {table for table, _ in types} == set(RESEARCH_TABLES)
    for table, column in [
        ("option_greeks", "timestamp"),
        ("continuous_futures", "timestamp"),
        ("chain_metrics", "bucket_start"),
        ("option_chain_daily", "close_time"),
    ]:
        assert types[table, column] == "TIMESTAMP WITH TIME ZONE"
        assert "IST" in comments[table, column]
    assert types["option_chain_daily", "oi_change"] == "BIGINT"
    assert types["chain_metrics", "session_date"] == "DATE"
    assert types["option_greeks", "iv"] == "DOUBLE"
