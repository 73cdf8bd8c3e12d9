"""The DuckDB schema: one typed table per asset, plus the per-(contract, day) fetch status.

Candle times are ``TIMESTAMPTZ``: DuckDB stores the instant; exchange times are IST (+05:30), so
``SET TimeZone = 'Asia/Kolkata'`` (done by ``storage.database.connect``) shows them as the exchange
printed them. Prices are rupees as DOUBLE; ``tick_size`` is in paise exactly as Upstox sends it
(5 = ₹0.05). Every table carries ``partition_key`` (e.g. ``NIFTY_2025-08-28``).
"""

from __future__ import annotations

SCHEMA = "main"

TABLES: dict[str, str] = {
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
    ("candle_fetch_status", "status"): "complete | no_trades | failed: what the API answered",
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
}


def create_tables(connection: object) -> None:
    """Create every table (idempotent) and document columns with comments."""
    execute = connection.execute  # type: ignore[attr-defined]
    for ddl in TABLES.values():
        execute(ddl)
    for (table, column), text in COMMENTS.items():
        quoted = text.replace("'", "''")
        execute(f"COMMENT ON COLUMN main.{table}.\"{column}\" IS '{quoted}'")
