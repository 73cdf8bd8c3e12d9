"""The DuckDB schema, versioned: the tables, their column comments, and the ordered migrations.

Candle times are ``TIMESTAMPTZ``: DuckDB stores the instant; exchange times are IST (+05:30), so
``SET TimeZone = 'Asia/Kolkata'`` (done by ``storage.database.connect``) shows them as the exchange
printed them. Prices are rupees as DOUBLE; ``tick_size`` is in paise exactly as Upstox sends it
(5 = ₹0.05). Every table carries ``partition_key`` (e.g. ``NIFTY_2025-08-28``).

Collected data cost API budget, so a schema change never recreates a table. The schema has a
version, recorded in ``schema_version`` (one row per step applied). Version 1 is the schema before
versioning (:data:`TABLES_V1`, frozen); every later version is a :class:`Migration` in
:data:`MIGRATIONS`, applied in order, in one transaction, by :func:`migrate`. A new database is
built the same way (version 1, then every migration), so a fresh file and an upgraded one are
alike by construction. Opening the database for writing (``storage.database.connect``) migrates
it; ``expirytrack migrate`` does it on demand.

To change the schema: append a ``Migration`` with the next version whose statements turn the
previous version into the new one (``ALTER TABLE … ADD COLUMN``, ``CREATE TABLE IF NOT EXISTS``,
an ``UPDATE`` that fills a new column), and update :data:`TABLES` and :data:`COMMENTS` to the new
shape. Never edit a released migration or :data:`TABLES_V1`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

SCHEMA = "main"

TABLES_V1: dict[str, str] = {
    "expiries": """
        CREATE TABLE IF NOT EXISTS main.expiries (
            partition_key VARCHAR NOT NULL,
            underlying_symbol VARCHAR NOT NULL,
            underlying_key VARCHAR NOT NULL,
            expiry DATE NOT NULL,
            is_monthly BOOLEAN NOT NULL,
            data_source VARCHAR NOT NULL,
            checked_at TIMESTAMPTZ NOT NULL
        )""",
    "contracts": """
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
        )""",
    "candles": """
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
        )""",
    "candle_fetch_status": """
        CREATE TABLE IF NOT EXISTS main.candle_fetch_status (
            partition_key VARCHAR NOT NULL,
            expired_instrument_key VARCHAR NOT NULL,
            trading_date DATE NOT NULL,
            status VARCHAR NOT NULL,
            candle_count INTEGER NOT NULL,
            error VARCHAR,
            fetched_at TIMESTAMPTZ
        )""",
    "coverage_report": """
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
        )""",
}
"""Version 1, the schema before versioning: frozen, so old databases are recognised."""


API_USAGE_V2 = """
    CREATE TABLE IF NOT EXISTS main.api_usage (
        run_id VARCHAR NOT NULL,
        partition_key VARCHAR NOT NULL,
        recorded_at TIMESTAMPTZ NOT NULL,
        data_source VARCHAR,
        requests BIGINT NOT NULL,
        requests_by_kind VARCHAR NOT NULL,
        candle_requests BIGINT NOT NULL,
        rate_limited BIGINT NOT NULL,
        retries BIGINT NOT NULL,
        transport_errors BIGINT NOT NULL,
        latency_p50_ms DOUBLE,
        latency_p95_ms DOUBLE,
        candles_fetched BIGINT NOT NULL,
        candles_per_request DOUBLE,
        limiter_wait_s DOUBLE NOT NULL,
        budget_used_30min BIGINT,
        budget_limit_30min BIGINT
    )"""

INDEX_CANDLES_V3 = """
    CREATE TABLE IF NOT EXISTS main.index_candles (
        partition_key VARCHAR NOT NULL,
        underlying_key VARCHAR NOT NULL,
        "timestamp" TIMESTAMPTZ NOT NULL,
        open DOUBLE NOT NULL,
        high DOUBLE NOT NULL,
        low DOUBLE NOT NULL,
        close DOUBLE NOT NULL,
        volume BIGINT NOT NULL
    )"""

RESEARCH_TABLES_V4: dict[str, str] = {
    "option_chain_daily": """
        CREATE TABLE IF NOT EXISTS main.option_chain_daily (
            partition_key VARCHAR NOT NULL,
            expired_instrument_key VARCHAR NOT NULL,
            instrument_type VARCHAR NOT NULL,
            strike_price DOUBLE,
            session_date DATE NOT NULL,
            open DOUBLE NOT NULL,
            high DOUBLE NOT NULL,
            low DOUBLE NOT NULL,
            close DOUBLE NOT NULL,
            volume BIGINT NOT NULL,
            open_interest BIGINT NOT NULL,
            oi_change BIGINT,
            build_up VARCHAR,
            close_time TIMESTAMPTZ NOT NULL,
            forward DOUBLE,
            iv DOUBLE,
            delta DOUBLE
        )""",
    "chain_metrics": """
        CREATE TABLE IF NOT EXISTS main.chain_metrics (
            partition_key VARCHAR NOT NULL,
            session_date DATE NOT NULL,
            bucket_start TIMESTAMPTZ NOT NULL,
            as_of TIMESTAMPTZ NOT NULL,
            forward DOUBLE,
            atm_strike DOUBLE,
            pcr_oi DOUBLE,
            pcr_volume DOUBLE,
            max_pain DOUBLE,
            ce_oi BIGINT NOT NULL,
            pe_oi BIGINT NOT NULL,
            atm_ce DOUBLE,
            atm_pe DOUBLE,
            atm_straddle DOUBLE,
            atm_iv DOUBLE,
            skew_25d DOUBLE
        )""",
    "option_greeks": """
        CREATE TABLE IF NOT EXISTS main.option_greeks (
            partition_key VARCHAR NOT NULL,
            expired_instrument_key VARCHAR NOT NULL,
            "timestamp" TIMESTAMPTZ NOT NULL,
            instrument_type VARCHAR NOT NULL,
            strike_price DOUBLE NOT NULL,
            close DOUBLE NOT NULL,
            forward DOUBLE,
            iv DOUBLE,
            delta DOUBLE,
            gamma DOUBLE,
            theta DOUBLE,
            vega DOUBLE
        )""",
    "continuous_futures": """
        CREATE TABLE IF NOT EXISTS main.continuous_futures (
            underlying_symbol VARCHAR NOT NULL,
            "timestamp" TIMESTAMPTZ NOT NULL,
            session_date DATE NOT NULL,
            expired_instrument_key VARCHAR NOT NULL,
            expiry DATE NOT NULL,
            partition_key VARCHAR NOT NULL,
            open DOUBLE NOT NULL,
            high DOUBLE NOT NULL,
            low DOUBLE NOT NULL,
            close DOUBLE NOT NULL,
            volume BIGINT NOT NULL,
            open_interest BIGINT NOT NULL,
            adjustment DOUBLE NOT NULL,
            adj_open DOUBLE NOT NULL,
            adj_high DOUBLE NOT NULL,
            adj_low DOUBLE NOT NULL,
            adj_close DOUBLE NOT NULL
        )""",
}
"""Version 4: the research layer's tables (``assets/research.py``)."""

SCHEMA_VERSION_TABLE = """
    CREATE TABLE IF NOT EXISTS main.schema_version (
        version INTEGER NOT NULL,
        description VARCHAR NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
    )"""
"""Bookkeeping: one row per version the database went through (1 = found or created unversioned)."""

TABLES: dict[str, str] = {
    **TABLES_V1,
    "api_usage": API_USAGE_V2,
    "index_candles": INDEX_CANDLES_V3,
    **RESEARCH_TABLES_V4,
}
"""Every data table at the current version (name → DDL), for code that lists them."""


COMMENTS: dict[tuple[str, str], str] = {
    (
        "expiries",
        "is_monthly",
    ): "True when Upstox lists a future for the expiry (weeklies have none)",
    ("expiries", "data_source"): "'upstox' (real API) or 'sandbox' (synthetic data)",
    (
        "contracts",
        "expired_instrument_key",
    ): "SEGMENT|exchange_token|DD-MM-YYYY; unique per contract",
    ("contracts", "tick_size"): "Minimum price step in paise, as Upstox sends it (5 = 0.05 rupees)",
    ("contracts", "strike_price"): "Rupees; NULL for futures",
    ("contracts", "weekly"): "As Upstox lists it for options; NULL for futures",
    ("candles", "timestamp"): "Candle start; exchange time is IST (+05:30), stored as an instant",
    ("candles", "open"): "Rupees",
    ("candles", "volume"): "Contracts traded (units, not lots) in the candle",
    ("candles", "open_interest"): "Open interest (units) at the candle",
    (
        "candle_fetch_status",
        "status",
    ): "complete | no_trades (final) | unconfirmed | failed (asked again next run)",
    (
        "coverage_report",
        "completeness_pct",
    ): "Contract-days answered (complete or no_trades) per 100 requested; NULL if not collected",
    (
        "coverage_report",
        "check_status",
    ): "passed | warn | failed | running | not_run | not_checked: latest check results",
    (
        "coverage_report",
        "verdict",
    ): "complete (>= 99 %) | partial (>= 90 %) | incomplete | failed (blocking check) | not_collected",
    ("api_usage", "run_id"): "The Dagster run that made the requests",
    (
        "api_usage",
        "requests_by_kind",
    ): "JSON object: requests per endpoint (expiries, option_contracts, future_contracts, candles)",
    ("api_usage", "rate_limited"): "Answers 429 (rate limited) during the run",
    ("api_usage", "retries"): "Requests sent again after a failure (429, 5xx, timeout)",
    ("api_usage", "latency_p50_ms"): "Median request latency; NULL when not measured",
    ("api_usage", "candles_fetched"): "Candles received from the API in this run",
    (
        "api_usage",
        "budget_used_30min",
    ): "Requests of this Upstox user in the 30-minute window when the run ended (all processes)",
    (
        "index_candles",
        "underlying_key",
    ): "The underlying's own instrument key (NSE_INDEX|Nifty 50, NSE_EQ|<ISIN>)",
    (
        "index_candles",
        "timestamp",
    ): "1-minute candle start; exchange time is IST (+05:30), stored as an instant",
    ("index_candles", "open"): "Rupees (index points for an index)",
    (
        "index_candles",
        "volume",
    ): "Shares traded in the candle (units); 0 for an index, which has no volume",
    (
        "option_chain_daily",
        "close_time",
    ): "The session's last candle (its close); exchange time is IST (+05:30), stored as an instant",
    ("option_chain_daily", "open_interest"): "Open interest (units) at the session's last candle",
    (
        "option_chain_daily",
        "oi_change",
    ): "open_interest minus the previous traded session's; NULL on the first",
    (
        "option_chain_daily",
        "build_up",
    ): "long_build_up | short_build_up | short_covering | long_unwinding vs the previous session",
    (
        "option_chain_daily",
        "forward",
    ): "Synthetic forward (put-call parity at ATM) at close_time; NULL if legs were stale",
    (
        "option_chain_daily",
        "iv",
    ): "Black-76 implied vol (annual, 0.15 = 15 %) of close vs forward; NULL when undefined",
    (
        "chain_metrics",
        "bucket_start",
    ): "Bucket start; exchange time is IST (+05:30), stored as an instant",
    (
        "chain_metrics",
        "as_of",
    ): "The minute the chain is taken at (the bucket's last); IST (+05:30), stored as an instant",
    ("chain_metrics", "pcr_oi"): "Put OI / call OI as of the minute",
    ("chain_metrics", "pcr_volume"): "Put / call session volume up to the minute",
    ("chain_metrics", "max_pain"): "Listed strike minimising the payout to option holders",
    (
        "chain_metrics",
        "atm_ce",
    ): "As-of close of the ATM call if it traded within max_age_minutes, else NULL",
    (
        "chain_metrics",
        "skew_25d",
    ): "IV of the 25-delta put minus IV of the 25-delta call, interpolated in delta",
    (
        "option_greeks",
        "timestamp",
    ): "Candle start; exchange time is IST (+05:30), stored as an instant",
    ("option_greeks", "forward"): "Synthetic forward used at this minute; NULL if stale",
    ("option_greeks", "theta"): "Black-76 theta in rupees per calendar day",
    ("option_greeks", "vega"): "Black-76 vega in rupees per 1 vol point (0.01)",
    (
        "continuous_futures",
        "timestamp",
    ): "Candle start; exchange time is IST (+05:30), stored as an instant",
    (
        "continuous_futures",
        "expired_instrument_key",
    ): "The future this minute came from (the front month under the roll rule)",
    (
        "continuous_futures",
        "adjustment",
    ): "Added to prices for back-adjusted adj_*: sum of roll gaps after this minute",
    ("schema_version", "version"): "Schema version reached by this step; the highest is current",
}


@dataclass(frozen=True)
class Migration:
    """One step from ``version - 1`` to ``version``: SQL statements run in order."""

    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        2,
        "api_usage: requests, 429s, retries, latency and budget use per run",
        (API_USAGE_V2,),
    ),
    Migration(
        3,
        "index_candles: the underlying's own 1-minute candles over each partition's window",
        (INDEX_CANDLES_V3,),
    ),
    Migration(
        4,
        "research: option_chain_daily, chain_metrics, option_greeks, continuous_futures",
        tuple(RESEARCH_TABLES_V4.values()),
    ),
)
"""Every step after version 1, in order. Append only."""

CURRENT_VERSION = MIGRATIONS[-1].version if MIGRATIONS else 1


class SchemaError(RuntimeError):
    """The database's schema cannot be used by this code (made by a newer version)."""


def table_names(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """The tables of the connection's own database in ``main``, sorted (not those of other
    files attached to the same DuckDB instance)."""
    rows = connection.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = ? "
        "AND database_name = current_database() ORDER BY table_name",
        [SCHEMA],
    ).fetchall()
    return [row[0] for row in rows]


def readable_names(connection: duckdb.DuckDBPyConnection, schema: str = SCHEMA) -> set[str]:
    """What the connection reads by name in ``schema``: its database's tables, and on a
    lakehouse reader the views that stand for them."""
    rows = connection.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = ? "
        "AND database_name = current_database() UNION "
        "SELECT view_name FROM duckdb_views() WHERE schema_name = ? "
        "AND database_name = current_database() AND NOT internal",
        [schema, schema],
    ).fetchall()
    return {row[0] for row in rows}


def schema_version(connection: duckdb.DuckDBPyConnection) -> int | None:
    """The database's schema version: 0 when it holds none of our tables, None if unversioned.

    None means version 1 tables without the ``schema_version`` table: a database made before
    versioning, which :func:`migrate` stamps as version 1 and then upgrades.
    """
    names = set(table_names(connection))
    if "schema_version" in names:
        found = connection.execute(f"SELECT max(version) FROM {SCHEMA}.schema_version").fetchall()[
            0
        ]
        if found[0] is not None:
            return int(found[0])
    if names & set(TABLES_V1):
        return None
    return 0


def _document(connection: duckdb.DuckDBPyConnection) -> None:
    for (table, column), text in COMMENTS.items():
        quoted = text.replace("'", "''")
        connection.execute(f"COMMENT ON COLUMN {SCHEMA}.{table}.\"{column}\" IS '{quoted}'")


def pending_migrations(connection: duckdb.DuckDBPyConnection) -> list[Migration]:
    """The steps :func:`migrate` would apply (empty when current); ``SchemaError`` if too new."""
    version = schema_version(connection)
    if version is not None and version > CURRENT_VERSION:
        raise SchemaError(
            f"the database has schema version {version}, newer than this expirytrack knows "
            f"({CURRENT_VERSION}): upgrade expirytrack (pip install -U) before using it"
        )
    start = 1 if version in (None, 0) else version
    return [m for m in MIGRATIONS if m.version > start]


def create_tables(connection: duckdb.DuckDBPyConnection) -> list[Migration]:
    """Bring the schema to :data:`CURRENT_VERSION` in the caller's transaction (if any).

    A new database gets version 1 and then every migration; an old one only the missing steps;
    a current one nothing (one catalog query). Returns the migrations applied. Prefer
    :func:`migrate`, which wraps this in its own transaction.
    """
    version = schema_version(connection)
    steps = pending_migrations(connection)
    if version not in (None, 0) and not steps:
        return []
    execute = connection.execute
    execute(SCHEMA_VERSION_TABLE)
    if version in (None, 0):
        for ddl in TABLES_V1.values():
            execute(ddl)
        found = "created" if version == 0 else "found without a version (made before versioning)"
        execute(
            f"INSERT INTO {SCHEMA}.schema_version (version, description) VALUES (1, ?)",
            [f"version 1 {found}"],
        )
    for step in steps:
        for statement in step.statements:
            execute(statement)
        execute(
            f"INSERT INTO {SCHEMA}.schema_version (version, description) VALUES (?, ?)",
            [step.version, step.description],
        )
    _document(connection)
    return steps


def migrate(connection: duckdb.DuckDBPyConnection) -> list[Migration]:
    """Upgrade the database in place to :data:`CURRENT_VERSION`, all or nothing; the steps applied.

    Call on a connection outside any transaction. Rows are never dropped or rewritten except by
    a migration's own statements; running it again is a no-op.
    """
    if schema_version(connection) == CURRENT_VERSION:
        return []
    connection.execute("BEGIN TRANSACTION")
    try:
        applied = create_tables(connection)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return applied


def describe(steps: Sequence[Migration]) -> str:
    """``"2 (api_usage: …)"`` — the steps applied, for messages."""
    return ", ".join(f"{m.version} ({m.description})" for m in steps)
