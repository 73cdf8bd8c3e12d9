"""The ``oi_snapshots`` asset: one session's option-chain snapshots, captured minute by minute.

A run materialises one session day: it polls every watched underlying's tracked expiries once a
minute until the session closes and writes each minute to that day's snapshot file
(``live.store``), never to the candle database, so it runs beside candle backfills without
either waiting for the other (it is not in the ``duckdb_writer`` pool). Its metadata counts what
was stored, what a restart found already stored, and every missed minute.
"""

from pathlib import Path

from dagster import AssetExecutionContext, Config, MaterializeResult, ResourceParam, asset
from pydantic import Field

from expirytrack_dagster.async_runner import run_async
from expirytrack_dagster.calendar import session_for
from expirytrack_dagster.live.capture import CaptureReport, capture_session
from expirytrack_dagster.live.clock import SessionClock
from expirytrack_dagster.live.partitions import session_day, session_day_partitions
from expirytrack_dagster.live.settings import LiveSettings
from expirytrack_dagster.live.store import SnapshotStore
from expirytrack_dagster.resources import UpstoxApi
from expirytrack_dagster.settings import CollectionSettings

LIVE_GROUP = "live"


class LiveCaptureConfig(Config):
    """What one capture run polls (run config); unset fields come from the ``live`` resource
    (the settings file's ``live:`` section, ``live/settings.py``)."""

    underlyings: list[str] | None = Field(
        default=None,
        description="Symbols of watched underlyings to capture (default: live.underlyings).",
    )
    expiries: list[str] | None = Field(
        default=None,
        description="Which current expiries of each: nearest, next, nearest_weekly, "
        "current_monthly, next_monthly (default: live.expiries).",
    )


def live_dir(collection: CollectionSettings) -> Path:
    """Where snapshot files go: ``live/`` beside the candle database (``data/live``, or
    ``data/sandbox/live`` for the sandbox)."""
    return Path(collection.database).parent / "live"


@asset(partitions_def=session_day_partitions, group_name=LIVE_GROUP, kinds={"duckdb"})
def oi_snapshots(
    context: AssetExecutionContext,
    config: LiveCaptureConfig,
    live: LiveSettings,
    upstox: UpstoxApi,
    collection: CollectionSettings,
    live_clock: ResourceParam[SessionClock],
) -> MaterializeResult:
    """Option-chain snapshots of one session day, one row per option leg per minute.

    Columns: capture minute (IST), underlying, expiry, strike, CE/PE, instrument key, ltp, close,
    volume, oi, prev_oi, bid/ask price and quantity, iv, delta, gamma, theta, vega, pop, spot,
    per-strike pcr, in ``data/live/<day>.duckdb`` table ``option_snapshots``. ``live_clock`` is
    the wall clock (``SessionClock()``); tests give the sandbox's time-scaled one.
    """
    day = session_day(context.partition_key)
    store = SnapshotStore(live_dir(collection), day)
    if session_for(day) is None:
        context.log.info(f"{day} is not a trading session: nothing to capture")
        return MaterializeResult(metadata={"session_day": day.isoformat(), "trading_day": False})
    symbols = config.underlyings if config.underlyings is not None else live.underlyings
    selectors = config.expiries if config.expiries is not None else live.expiries
    underlyings = [collection.underlying(symbol) for symbol in symbols]
    report = CaptureReport(day)
    try:
        run_async(
            capture_session(
                upstox.live_client,
                store,
                underlyings,
                selectors=selectors,
                clock=live_clock,
                report=report,
            )
        )
    finally:
        context.log.info(
            f"live capture {day}: {report.chains_stored} chains stored, "
            f"{report.chains_already_stored} already stored, {report.chains_missed} missed"
        )
    return MaterializeResult(metadata={**report.as_metadata(), "path": str(store.path)})
