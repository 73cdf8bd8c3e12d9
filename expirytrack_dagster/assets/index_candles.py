"""The ``index_candles`` asset: the underlying's own 1-minute candles over each partition's window.

"Where was the index?" A weekly partition has no future, so the spot is stored on its own: the
underlying's key (``NSE_INDEX|Nifty 50``, or a share's ``NSE_EQ|<ISIN>``) asked through Upstox's
V3 historical-candle endpoint for active instruments (index keys are always active), over the
same window ``candles`` collects (``lookback_months`` before expiry through expiry day).

Nothing about the endpoint is assumed. The docs allow one month per 1-minute request, so the
window is asked in spans of :data:`INDEX_SPAN_DAYS` (less with ``upstox.max_span_days``), and
every answer is checked day by day: each trading day of the span must come back with its first
bar at the session's open and its last bar at the session's last minute. A day that does not
(a refused or cut answer, a day before the data starts — January 2022 per the docs) fails the
partition naming the days; the days that did come back complete are stored first.

Re-runs spend nothing twice: days already stored complete are not asked again (unless
``force_refetch``), so a re-run of a complete partition makes no request and writes nothing.
Fetched days replace their stored rows in one transaction.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
from dagster import AssetExecutionContext, Config, Failure, MaterializeResult, MetadataValue

from expirytrack_dagster.assets.partitioned import expiry_asset
from expirytrack_dagster.async_runner import run_async
from expirytrack_dagster.calendar import IST, session_for, trading_days_between
from expirytrack_dagster.collection import FATAL_ERRORS
from expirytrack_dagster.collection.collect import stop_reason
from expirytrack_dagster.partitions import parse_partition_key
from expirytrack_dagster.resources import UpstoxApi
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster.storage.database import connect
from expirytrack_dagster.storage.io_manager import insert_frame, transaction
from expirytrack_dagster.storage.schema import SCHEMA
from expirytrack_dagster.storage.stores import claim_source
from expirytrack_dagster.storage.upstream import require_upstream_row
from expirytrack_dagster.upstox.errors import UpstoxError
from expirytrack_dagster.upstox.windows import day_runs, split_windows

INDEX_CANDLES_TABLE = f"{SCHEMA}.index_candles"

INDEX_SPAN_DAYS = 28
"""Days per V3 request. The docs allow one month per 1-minute request; 28 days lies within a
month whichever day it starts, so no request depends on how Upstox counts a month."""

MINUTE_DATA_FROM = date(2022, 1, 1)
"""The first day of 1-minute V3 data per the Upstox docs (named in the failure, not assumed)."""

_SHOWN = 8  # days or problems named in a message before "…"


class IndexCandlesConfig(Config):
    """Run configuration for ``index_candles``."""

    force_refetch: bool = False
    """Ask Upstox again for every day of the window, even days stored complete."""


@dataclass(frozen=True)
class DayCoverage:
    """Which trading days a set of 1-minute candles covers end to end, and minutes missing inside."""

    complete: frozenset[date]
    minutes_missing: int


def day_coverage(timestamps: pd.Series, days: Sequence[date]) -> DayCoverage:
    """The ``days`` whose candles run from the session's open to its last minute.

    ``timestamps`` are candle starts (timezone-aware). A day is complete when its first candle is
    the session's open and its last the session's final minute; for those days, minutes without
    a candle in between are counted in ``minutes_missing`` (an index should have none).
    """
    if timestamps.empty:
        return DayCoverage(frozenset(), 0)
    local = pd.to_datetime(timestamps).dt.tz_convert(IST)
    by_day = local.groupby(local.dt.date).agg(["min", "max", "nunique"])
    complete, missing = set(), 0
    for day in days:
        session = session_for(day)
        if session is None or day not in by_day.index:
            continue
        first, last, count = by_day.loc[day]
        if first == session.open and last == session.close - timedelta(minutes=1):
            complete.add(day)
            missing += session.minutes - int(count)
    return DayCoverage(frozenset(complete), missing)


@dataclass
class Fetched:
    """What the requests brought back: verified candles, problems by window, and a stop."""

    frames: list[pd.DataFrame] = field(default_factory=list)
    days: set[date] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    stopped: UpstoxError | None = None
    api: dict = field(default_factory=dict)


async def _fetch(
    upstox: UpstoxApi, instrument_key: str, windows: list[tuple[date, date]]
) -> Fetched:
    """Ask for each window in turn; keep the trading days each answer covers end to end."""
    out = Fetched()
    async with upstox.client() as client:
        for start, end in windows:
            try:
                frame = await client.get_index_candles(instrument_key, start, end)
            except FATAL_ERRORS as exc:
                out.stopped = exc
                break
            except UpstoxError as exc:
                out.problems.append(f"{start} … {end}: {exc}")
                continue
            days = trading_days_between(start, end)
            stamps = frame["timestamp"].dt.tz_convert(IST)
            frame = frame[stamps.dt.date.isin(days)].drop_duplicates("timestamp")
            covered = day_coverage(frame["timestamp"], days).complete
            lacking = [d for d in days if d not in covered]
            if lacking:
                out.problems.append(
                    f"{start} … {end}: the answer lacks {len(lacking)} of {len(days)} trading "
                    f"days end to end ({_listed(lacking)})"
                )
            keep = frame["timestamp"].dt.tz_convert(IST).dt.date.isin(covered)
            out.frames.append(frame[keep])
            out.days |= covered
        out.api = client.stats.as_metadata()
    return out


def _listed(days: Sequence[object]) -> str:
    shown = ", ".join(str(d) for d in list(days)[:_SHOWN])
    return shown + (", …" if len(days) > _SHOWN else "")


def stored_timestamps(database: Path | str, partition_key: str) -> pd.Series:
    """The candle starts stored for the partition (empty when nothing is)."""
    if not Path(database).exists():
        return pd.Series([], dtype=pd.DatetimeTZDtype(tz=IST))
    with connect(database, read_only=True) as db:
        try:
            frame = db.execute(
                f'SELECT "timestamp" FROM {INDEX_CANDLES_TABLE} WHERE partition_key = ?',
                [partition_key],
            ).fetchdf()
        except duckdb.CatalogException:
            return pd.Series([], dtype=pd.DatetimeTZDtype(tz=IST))
    return frame["timestamp"]


def publish_index_candles(
    database: Path | str,
    partition_key: str,
    rows: pd.DataFrame,
    days: set[date],
    window: tuple[date, date],
    source: str | None,
) -> int:
    """Replace the partition's rows of ``days`` (and any outside ``window``) with ``rows``, in one
    transaction; the partition's row count after it. ``rows`` has the table's columns."""
    with transaction(database) as connection:
        if source is not None:
            claim_source(connection, source, f"the database {database}")
        connection.register("_expirytrack_days", pd.DataFrame({"day": sorted(days)}))
        try:
            # connect() sets the session time zone to IST, so the cast gives the trading date.
            connection.execute(
                f"""DELETE FROM {INDEX_CANDLES_TABLE} WHERE partition_key = ? AND (
                    CAST("timestamp" AS DATE) IN (SELECT day FROM _expirytrack_days)
                    OR CAST("timestamp" AS DATE) NOT BETWEEN ? AND ?)""",
                [partition_key, window[0], window[1]],
            )
        finally:
            connection.unregister("_expirytrack_days")
        insert_frame(connection, INDEX_CANDLES_TABLE, rows.sort_values("timestamp"))
        (count,) = connection.execute(
            f"SELECT count(*) FROM {INDEX_CANDLES_TABLE} WHERE partition_key = ?", [partition_key]
        ).fetchone()
    return int(count)


@expiry_asset(
    description=(
        "The underlying's own 1-minute candles (index or share; volume 0 for an index) over the "
        "partition's window, from Upstox's V3 historical-candle endpoint; timestamps are candle "
        "starts in IST."
    )
)
def index_candles(
    context: AssetExecutionContext,
    config: IndexCandlesConfig,
    upstox: UpstoxApi,
    collection: CollectionSettings,
    expiries: pd.DataFrame,
) -> MaterializeResult:
    """Fetch the trading days of the window not stored complete; store them; fail loudly on any
    day the API did not answer end to end (after storing the days it did)."""
    partition_key = context.partition_key
    partition = parse_partition_key(partition_key)
    require_upstream_row(collection.database, "expiries", partition_key, "index_candles")
    underlying_key = str(expiries["underlying_key"].iloc[0])
    window = (collection.lookback_start(partition.expiry), partition.expiry)
    days = trading_days_between(*window)
    stored = stored_timestamps(collection.database, partition_key)
    have = set() if config.force_refetch else day_coverage(stored, days).complete
    todo = [d for d in days if d not in have]
    span = min(INDEX_SPAN_DAYS, upstox.max_span_days or INDEX_SPAN_DAYS)
    windows = [w for a, b in day_runs(todo) for w in split_windows(a, b, span)]
    context.log.info(
        f"{underlying_key} 1-minute candles {window[0]} … {window[1]}: {len(days)} trading days, "
        f"{len(have)} stored complete, {len(windows)} requests of at most {span} days "
        f"from {upstox.describe_source()}"
    )
    metadata: dict[str, object] = {
        "underlying_key": underlying_key,
        "window": f"{window[0]} … {window[1]}",
        "trading_days": len(days),
        "days_stored_before": len(have),
        "span_days": span,
        "dagster/table_name": INDEX_CANDLES_TABLE,
    }
    if not windows:
        metadata.update(
            {
                "dagster/row_count": MetadataValue.int(len(stored)),
                "api_requests": 0,
                "published": "unchanged: every trading day already stored complete",
            }
        )
        return MaterializeResult(metadata=metadata)

    try:
        fetched = run_async(_fetch(upstox, underlying_key, windows))
    except FATAL_ERRORS as exc:  # before the first request (a missing or dying token)
        raise Failure(
            description=f"{partition_key}: {stop_reason(exc)}. Nothing was written."
        ) from exc
    rows = pd.concat(fetched.frames, ignore_index=True) if fetched.frames else None
    count = len(stored)
    if rows is not None and not rows.empty:
        rows.insert(0, "partition_key", partition_key)
        rows.insert(1, "underlying_key", underlying_key)
        count = publish_index_candles(
            collection.database,
            partition_key,
            rows,
            fetched.days,
            window,
            upstox.resolved_source(),
        )
    complete = set(have) | fetched.days
    coverage = day_coverage(stored_timestamps(collection.database, partition_key), days)
    metadata.update(
        {
            "dagster/row_count": MetadataValue.int(count),
            "days_fetched": len(fetched.days),
            "days_complete": len(complete),
            "minutes_missing": coverage.minutes_missing,
            **fetched.api,
            "published": f"{len(fetched.days)} days written" if fetched.days else "nothing new",
        }
    )
    if coverage.minutes_missing:
        context.log.warning(
            f"{coverage.minutes_missing} minutes inside otherwise complete days have no candle"
        )
    if fetched.stopped is not None:
        raise Failure(
            description=(
                f"{partition_key}: {stop_reason(fetched.stopped)}. Stored {len(fetched.days)} "
                f"days fetched before the stop; {len(days) - len(complete)} of {len(days)} "
                "trading days are still missing and are asked for on the next run."
            ),
            metadata=metadata,
        )
    if fetched.problems:
        missing = sorted(set(days) - complete)
        early = [d for d in missing if d < MINUTE_DATA_FROM]
        hint = (
            f" Upstox documents 1-minute V3 data from {MINUTE_DATA_FROM} on; "
            f"{len(early)} missing days lie before it."
            if early
            else ""
        )
        raise Failure(
            description=(
                f"{partition_key}: {len(missing)} of {len(days)} trading days of {underlying_key} "
                f"did not come back complete ({_listed(missing)}); the {len(complete)} that did "
                f"are stored. Per request: {'; '.join(fetched.problems[:_SHOWN])}.{hint} If "
                "Upstox refused or cut a request, its span limit may be shorter than the "
                "documented month: set upstox.max_span_days lower and run the partition again."
            ),
            metadata=metadata,
        )
    return MaterializeResult(metadata=metadata)
