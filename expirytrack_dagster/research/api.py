"""The research API for notebooks: option chain, OI tracker, max pain, PCR and candles from DuckDB.

Every function reads over a read-only connection (its own, or one from :func:`open_database`
passed as ``database=``), loads only the rows it needs with parameterised SQL (the partition, the session of ``at`` and the previous one), and
hands them to the pure functions of ``research.asof``/``forward``/``oi``/``black76``::

    from expirytrack_dagster import research
    chain = research.option_chain("NIFTY", "2025-08-28", "2025-08-14 10:30")
    chain.attrs["forward"], chain.attrs["max_pain"]

``database`` defaults to the collection database of the settings (``data/expirytrack.duckdb``,
or ``data/sandbox/expirytrack.duckdb`` with ``EXPIRYTRACK_SOURCE=sandbox``). Times are IST; a
naive time is read as IST. Bad input raises :class:`ResearchError` (a ``ValueError``) with one
line saying what is wrong and what to do.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from expirytrack_dagster.calendar import IST, Session
from expirytrack_dagster.partitions import build_partition_key
from expirytrack_dagster.research import black76
from expirytrack_dagster.research.asof import chain_asof, previous_session, session_at, to_ist
from expirytrack_dagster.research.expiry_time import years_to_expiry
from expirytrack_dagster.research.forward import atm_strike, synthetic_forward
from expirytrack_dagster.research.oi import TRACKER_WINDOWS
from expirytrack_dagster.research.oi import max_pain as _max_pain
from expirytrack_dagster.research.oi import oi_tracker as _oi_tracker
from expirytrack_dagster.research.oi import pcr as _pcr
from expirytrack_dagster.research.resample import INTERVAL_MINUTES, resample
from expirytrack_dagster.storage.database import connect, open_connection

DEFAULT_RATE = 0.065
LEG_COLUMNS = (
    "ltp",
    "age_minutes",
    "session_volume",
    "oi",
    "oi_change",
    "iv",
    "delta",
    "gamma",
    "theta",
    "vega",
)
"""Per-leg columns of :func:`option_chain`, each once as ``CE_<name>`` and once as ``PE_<name>``."""
CANDLE_INTERVAL = "1minute"
LOCK_WAIT_S = 30.0
"""How long a read waits for a running write to the file to finish."""
"""The collected interval the research layer reads (coarser bars are made by ``resample``)."""


class ResearchError(ValueError):
    """The question cannot be answered from this database: one line saying why and what to do."""


def default_database() -> Path:
    """The collection database named by the settings (file, ``EXPIRYTRACK_*`` variables)."""
    from expirytrack_dagster.project_settings import load_settings

    return Path(load_settings().collection.database)


Database = Path | str | duckdb.DuckDBPyConnection | None
"""Where to read: a DuckDB file, an open connection (kept open: the fastest for many questions,
see :func:`open_database`), or None for the settings' database."""


def open_database(database: Path | str | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to pass as ``database=`` to many calls (close it when done).

    A call given a path opens the file for that call only; a notebook asking many questions
    keeps one connection open instead. While it is open no other process can write the file.
    """
    return open_connection(_existing(database), read_only=True, lock_timeout_s=LOCK_WAIT_S)


def _existing(database: Path | str | None) -> Path:
    path = Path(database) if database is not None else default_database()
    if not path.exists():
        raise ResearchError(
            f"no database at {path}: collect data first (`expirytrack backfill SYMBOL`, or "
            "`expirytrack demo` for the sandbox)"
        )
    return path


@contextmanager
def _open(database: Database) -> Iterator[duckdb.DuckDBPyConnection]:
    """``database`` itself when it is a connection (left open), else a short-lived one."""
    if isinstance(database, duckdb.DuckDBPyConnection):
        yield database
        return
    with connect(_existing(database), read_only=True, lock_timeout_s=LOCK_WAIT_S) as connection:
        yield connection


def _expiry(value: date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ResearchError(f"expiry {value!r} is not a date YYYY-MM-DD") from None


def _minute(at: pd.Timestamp | datetime | str) -> pd.Timestamp:
    try:
        stamp = to_ist(at)
    except (ValueError, TypeError):
        raise ResearchError(f"time {at!r} is not a time like '2025-08-14 10:30' (IST)") from None
    return stamp.floor("min")


def _session(at: pd.Timestamp, expiry: date) -> Session:
    try:
        session = session_at(at)
    except ValueError as exc:
        raise ResearchError(str(exc)) from None
    if at.date() > expiry:
        raise ResearchError(f"{at:%Y-%m-%d %H:%M} is after the expiry {expiry} of the partition")
    return session


@dataclass(frozen=True)
class _Partition:
    """A collected partition: its key, underlying and contracts (one row per contract)."""

    key: str
    underlying_key: str
    contracts: pd.DataFrame


def _partition(db: duckdb.DuckDBPyConnection, underlying: str, expiry: date) -> _Partition:
    try:
        key = build_partition_key(underlying.upper(), expiry)
    except ValueError as exc:
        raise ResearchError(str(exc)) from None
    contracts = db.execute(
        """
        SELECT expired_instrument_key, trading_symbol, instrument_type AS option_type,
               strike_price AS strike, underlying_key
        FROM contracts WHERE partition_key = ?
        """,
        [key],
    ).fetchdf()
    if contracts.empty:
        raise ResearchError(
            f"partition {key} is not collected in this database: collect it with "
            f"`expirytrack backfill {underlying.upper()} --since {expiry} --until {expiry}` "
            "(or materialise the partition in the Dagster UI)"
        )
    return _Partition(key, str(contracts["underlying_key"].iloc[0]), contracts)


_LAST_CANDLES = """
    SELECT expired_instrument_key, last.t AS "timestamp", last.o AS open, last.h AS high,
           last.l AS low, last.c AS close, volume, last.oi AS open_interest
    FROM (
        SELECT expired_instrument_key, {volume} AS volume,
               arg_max({{'t': "timestamp", 'o': open, 'h': high, 'l': low, 'c': close,
                         'oi': open_interest}}, "timestamp") AS last
        FROM candles
        WHERE partition_key = ? AND "interval" = ? AND "timestamp" >= ? AND "timestamp" <= ?
          {keys}
        GROUP BY expired_instrument_key
    )
"""
"""Each contract's last candle of a span (one ``arg_max`` of a struct: a third of the time of one
``arg_max`` per column), with the span's volume summed (or 0)."""


def _last_candles(
    db: duckdb.DuckDBPyConnection,
    partition_key: str,
    start: datetime,
    end: datetime,
    *,
    keys: Sequence[str] | None = None,
    volume: bool = True,
) -> pd.DataFrame:
    """Per contract, its last candle in ``[start, end]`` with the volume summed over the span.

    One such row per contract stands for all its candles of the span: ``chain_asof`` of it gives
    the same answer as of every candle (last prices and OI, summed volume), for a fraction of the
    rows moved out of DuckDB.
    """
    params: list = [partition_key, CANDLE_INTERVAL, start, end]
    clause = ""
    if keys is not None:
        clause = "AND expired_instrument_key IN (SELECT unnest(?))"
        params.append(list(keys))
    sql = _LAST_CANDLES.format(volume="sum(volume)" if volume else "0", keys=clause)
    return db.execute(sql, params).fetchdf()


_TWO_SESSIONS = """
    WITH g AS MATERIALIZED (
        SELECT expired_instrument_key,
               sum(volume) FILTER (WHERE "timestamp" >= $open) AS volume,
               arg_max({'t': "timestamp", 'o': open, 'h': high, 'l': low, 'c': close,
                        'oi': open_interest}, "timestamp") FILTER (WHERE "timestamp" >= $open)
                   AS today,
               arg_max({'t': "timestamp", 'o': open, 'h': high, 'l': low, 'c': close,
                        'oi': open_interest}, "timestamp") FILTER (WHERE "timestamp" < $open)
                   AS prev
        FROM candles
        WHERE partition_key = $key AND "interval" = $interval
          AND "timestamp" >= $prev_open AND "timestamp" <= $at
          AND ("timestamp" >= $open OR "timestamp" <= $prev_last)
        GROUP BY expired_instrument_key
    )
    SELECT expired_instrument_key, today.t AS "timestamp", today.o AS open, today.h AS high,
           today.l AS low, today.c AS close, volume, today.oi AS open_interest
    FROM g WHERE today IS NOT NULL
    UNION ALL
    SELECT expired_instrument_key, prev.t, prev.o, prev.h, prev.l, prev.c, 0, prev.oi
    FROM g WHERE prev IS NOT NULL
"""
"""Each contract's last candle of the session up to ``at`` (its session volume summed) and its
last candle of the previous session (volume 0), in one scan of the partition's candles: a third
less time than two ``_LAST_CANDLES`` scans joined by ``UNION ALL``."""


def _asof(
    db: duckdb.DuckDBPyConnection,
    part: _Partition,
    at: pd.Timestamp,
    session: Session,
    *,
    previous: bool = True,
) -> pd.DataFrame:
    """``chain_asof`` of every contract of the partition at ``at`` (FUT rows included).

    One query: each contract's last candle of the session up to ``at`` (volume summed) and, when
    ``previous``, its last candle of the previous session (for ``prev_session_oi``; without it
    ``prev_session_oi`` and ``oi_change`` are NaN, for the callers that never read them).
    """
    before = previous_session(session) if previous else None
    if before is None:
        rows = _last_candles(db, part.key, session.open, at)
    else:
        params = {
            "key": part.key,
            "interval": CANDLE_INTERVAL,
            "open": session.open,
            "at": at,
            "prev_open": before.open,
            "prev_last": before.close - timedelta(minutes=1),
        }
        rows = db.execute(_TWO_SESSIONS, params).fetchdf()
    chain = chain_asof(rows, at)
    contracts = part.contracts[
        ["expired_instrument_key", "trading_symbol", "option_type", "strike"]
    ]
    # Contracts that never traded in either session are still listed (no price, no OI).
    chain = contracts.merge(chain, on="expired_instrument_key", how="left")
    chain["session_volume"] = chain["session_volume"].fillna(0).astype("int64")
    return chain


def _spot(db: duckdb.DuckDBPyConnection, underlying_key: str, session: Session, at) -> float:
    """The index close at ``at`` (as of, same session) from ``index_candles``; NaN if absent."""
    try:
        row = db.execute(
            """
            SELECT arg_max(close, "timestamp") FROM index_candles
            WHERE underlying_key = ? AND "timestamp" >= ? AND "timestamp" <= ?
            """,
            [underlying_key, session.open, at],
        ).fetchone()
    except duckdb.CatalogException:  # a database made before index candles were collected
        return math.nan
    return float(row[0]) if row and row[0] is not None else math.nan


def _future(
    db: duckdb.DuckDBPyConnection,
    part: _Partition,
    chain: pd.DataFrame,
    expiry: date,
    session: Session,
    at: pd.Timestamp,
) -> tuple[float, str | None]:
    """The future's last price in the session at ``at`` and its key: the partition's own future,
    or for a weekly expiry (no future) the nearest collected monthly future expiring later."""
    own = chain[chain["option_type"] == "FUT"]
    if not own.empty:
        return float(own["close"].iloc[0]), str(own["expired_instrument_key"].iloc[0])
    row = db.execute(
        """
        SELECT c.expired_instrument_key, c.partition_key FROM contracts c
        WHERE c.underlying_key = ? AND c.instrument_type = 'FUT' AND c.expiry >= ?
        ORDER BY c.expiry LIMIT 1
        """,
        [part.underlying_key, expiry],
    ).fetchone()
    if row is None:
        return math.nan, None
    found = _last_candles(db, row[1], session.open, at, keys=[row[0]])
    price = float(found["close"].iloc[0]) if not found.empty else math.nan
    return price, row[0]


@dataclass(frozen=True)
class _Snapshot:
    """The as-of chain of a partition at a minute, with its forward and ATM strike."""

    partition: _Partition
    session: Session
    at: pd.Timestamp
    tau: float
    options: pd.DataFrame
    forward: float
    future_price: float
    future_key: str | None
    spot: float
    atm_strike: float


def _snapshot(
    db: duckdb.DuckDBPyConnection,
    underlying: str,
    expiry: date | str,
    at: pd.Timestamp | datetime | str,
    rate: float,
    max_age_minutes: int,
    *,
    previous: bool = True,
) -> _Snapshot:
    """The chain at ``at``; ``previous=False`` skips the previous session (no ``oi_change``)."""
    expiry = _expiry(expiry)
    at = _minute(at)
    session = _session(at, expiry)
    part = _partition(db, underlying, expiry)
    chain = _asof(db, part, at, session, previous=previous)
    tau = float(years_to_expiry(pd.Series([at]), expiry)[0])
    options = chain[chain["option_type"].isin(["CE", "PE"])].reset_index(drop=True)
    future_price, future_key = _future(db, part, chain, expiry, session, at)
    forward = synthetic_forward(options, rate, tau, max_age_minutes)
    if not math.isfinite(forward) and future_key is not None:
        own = chain[chain["option_type"] == "FUT"]
        if not own.empty and own["age_minutes"].iloc[0] <= max_age_minutes:
            forward = future_price
    spot = _spot(db, part.underlying_key, session, at)
    strike = atm_strike(options["strike"], forward)
    return _Snapshot(
        part, session, at, tau, options, forward, future_price, future_key, spot, strike
    )


def _with_greeks(
    options: pd.DataFrame, snap: _Snapshot, expiry: date, rate: float, max_age_minutes: int
) -> pd.DataFrame:
    """IV and greeks per leg from its last price; NaN for stale or untraded legs."""
    close = options["close"].to_numpy(dtype=float)
    fresh = options["age_minutes"].to_numpy(dtype=float) <= max_age_minutes
    # The close is the last trade of the candle's minute: time to expiry from the minute's end.
    ends = pd.DatetimeIndex(options["timestamp"]).fillna(snap.at) + pd.Timedelta(minutes=1)
    tau = years_to_expiry(ends, expiry)
    is_call = (options["option_type"] == "CE").to_numpy()
    strike = options["strike"].to_numpy(dtype=float)
    quotes = np.where(fresh, close, np.nan)
    iv = black76.implied_vol(quotes, is_call, snap.forward, strike, tau, rate)
    greeks = black76.greeks(is_call, snap.forward, strike, tau, rate, iv)
    return options.assign(iv=iv, **{c: greeks[c].to_numpy() for c in greeks.columns})


def _wide(legs: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Long per-leg rows → one row per strike with ``CE_<column>`` and ``PE_<column>``."""
    strike = legs["strike"].to_numpy(dtype=float)
    strikes = np.unique(strike)
    out: dict[str, np.ndarray] = {"strike": strikes}
    for side in ("CE", "PE"):
        rows = np.flatnonzero((legs["option_type"] == side).to_numpy())
        where = np.searchsorted(strikes, strike[rows])
        for column in columns:
            values = np.full(strikes.size, np.nan)
            values[where] = legs[column].to_numpy(dtype=float)[rows]
            out[f"{side}_{column}"] = values
    return pd.DataFrame(out)


def option_chain(
    underlying: str,
    expiry: date | str,
    at: pd.Timestamp | datetime | str,
    *,
    database: Database = None,
    rate: float = DEFAULT_RATE,
    max_age_minutes: int = 5,
) -> pd.DataFrame:
    """The option chain of ``underlying``'s ``expiry`` as of minute ``at`` (IST).

    One row per listed strike, ascending: ``strike`` (float, rupees), ``is_atm`` (bool), and for
    each leg ``CE_``/``PE_`` + ``ltp`` (last traded price at or before ``at`` in the same session;
    NaN if none), ``age_minutes`` (minutes since that trade), ``session_volume`` (units traded in
    the session up to ``at``), ``oi`` (last known OI in the session), ``oi_change`` (vs the
    previous session's last candle), ``iv`` (Black-76 on ``forward``, annualised; NaN when the
    leg's trade is older than ``max_age_minutes`` or it has none), ``delta``, ``gamma``,
    ``theta`` (rupees per calendar day), ``vega`` (rupees per vol point).

    ``DataFrame.attrs``: ``forward`` (synthetic, from put-call parity at the strikes nearest the
    money whose two legs traded within ``max_age_minutes``; the partition's own future if none),
    ``future_price`` (the partition's future, or for a weekly the nearest later monthly future
    collected; NaN if none traded), ``spot`` (index close from ``index_candles``; NaN when not
    collected), ``atm_strike``, ``atm_iv`` (mean IV of the ATM legs that have one), ``pcr_oi``,
    ``pcr_volume``, ``max_pain``, ``tau`` (years from ``at`` to the expiry close), ``rate``,
    ``partition_key``, ``at``.
    """
    expiry = _expiry(expiry)
    with _open(database) as db:
        snap = _snapshot(db, underlying, expiry, at, rate, max_age_minutes)
    legs = _with_greeks(snap.options, snap, expiry, rate, max_age_minutes)
    legs = legs.rename(columns={"close": "ltp"})
    chain = _wide(legs, LEG_COLUMNS)
    chain.insert(1, "is_atm", chain["strike"] == snap.atm_strike)
    atm = chain[chain["is_atm"]]
    atm_ivs = atm[["CE_iv", "PE_iv"]].to_numpy(dtype=float).ravel()
    atm_ivs = atm_ivs[np.isfinite(atm_ivs)]
    chain.attrs.update(
        {
            "forward": snap.forward,
            "future_price": snap.future_price,
            "spot": snap.spot,
            "atm_strike": snap.atm_strike,
            "atm_iv": float(atm_ivs.mean()) if atm_ivs.size else math.nan,
            **_pcr(snap.options),
            "max_pain": _max_pain(snap.options),
            "tau": snap.tau,
            "rate": rate,
            "partition_key": snap.partition.key,
            "at": snap.at,
        }
    )
    return chain


def oi_tracker(
    underlying: str,
    expiry: date | str,
    at: pd.Timestamp | datetime | str,
    windows: Sequence[int] = TRACKER_WINDOWS,
    strikes_around_atm: int = 3,
    *,
    database: Database = None,
    rate: float = DEFAULT_RATE,
    max_age_minutes: int = 5,
) -> pd.DataFrame:
    """OI change of the strikes around the money over the last ``windows`` minutes, as of ``at``.

    The strikes are the ATM strike (nearest the synthetic forward, as in :func:`option_chain`)
    and ``strikes_around_atm`` listed strikes on each side. One row per contract: ``strike``,
    ``option_type``, ``expired_instrument_key``, ``is_atm``, ``oi`` (as of ``at``), and per
    window ``w``: ``oi_chg_{w}m`` (OI at ``at`` minus OI as of ``at − w`` minutes, same session)
    and ``oi_chg_pct_{w}m`` (% of the earlier OI); NaN when ``at − w`` is before the open or
    the contract had not traded yet. ``attrs``: ``forward``, ``atm_strike``, ``at``.
    """
    expiry = _expiry(expiry)
    if strikes_around_atm < 0 or any(int(w) <= 0 for w in windows):
        raise ResearchError("strikes_around_atm must be >= 0 and every window > 0 minutes")
    with _open(database) as db:
        snap = _snapshot(db, underlying, expiry, at, rate, max_age_minutes, previous=False)
        centre = snap.atm_strike
        if not math.isfinite(centre):
            centre = atm_strike(snap.options["strike"], snap.future_price)
        if not math.isfinite(centre):
            raise ResearchError(
                f"no forward at {snap.at:%Y-%m-%d %H:%M}: no strike had both legs traded within "
                f"{max_age_minutes} minutes and the future did not trade; try a later minute"
            )
        listed = np.sort(snap.options["strike"].unique())
        i = int(np.searchsorted(listed, centre))
        chosen = listed[max(0, i - strikes_around_atm) : i + strikes_around_atm + 1]
        picked = snap.options[snap.options["strike"].isin(chosen)]
        candles = db.execute(
            """
            SELECT expired_instrument_key, "timestamp", close, volume, open_interest
            FROM candles
            WHERE partition_key = ? AND "interval" = ? AND "timestamp" >= ? AND "timestamp" <= ?
              AND expired_instrument_key IN (SELECT unnest(?))
            """,
            [
                snap.partition.key,
                CANDLE_INTERVAL,
                snap.session.open,
                snap.at,
                list(picked["expired_instrument_key"]),
            ],
        ).fetchdf()
    keys = picked[["expired_instrument_key", "strike", "option_type"]]
    where = pd.Index(keys["expired_instrument_key"]).get_indexer(candles["expired_instrument_key"])
    candles = candles.assign(
        strike=keys["strike"].to_numpy(dtype=float)[where],
        option_type=keys["option_type"].to_numpy()[where],
    )
    tracker = _oi_tracker(candles, snap.at, chosen, windows)
    if len(tracker) < len(keys):  # contracts with no trade yet in the session: listed, NaN OI
        tracker = keys.merge(tracker, on=list(keys.columns), how="left")
        tracker = tracker.sort_values(["strike", "option_type"]).reset_index(drop=True)
    tracker = tracker[[*_oi_tracker_columns(windows)]]
    tracker.insert(3, "is_atm", tracker["strike"] == centre)
    tracker.attrs.update({"forward": snap.forward, "atm_strike": centre, "at": snap.at})
    return tracker


def _oi_tracker_columns(windows: Sequence[int]) -> list[str]:
    out = ["strike", "option_type", "expired_instrument_key", "oi"]
    for w in windows:
        out += [f"oi_chg_{w}m", f"oi_chg_pct_{w}m"]
    return out


def max_pain(
    underlying: str,
    expiry: date | str,
    at: pd.Timestamp | datetime | str,
    *,
    database: Database = None,
) -> float:
    """Max pain at ``at``: the listed strike minimising the payout to option holders at expiry,
    from each contract's OI as of ``at`` (see ``research.oi.max_pain``); NaN without OI."""
    with _open(database) as db:
        snap = _snapshot(db, underlying, expiry, at, DEFAULT_RATE, 5, previous=False)
    return _max_pain(snap.options)


def pcr(
    underlying: str,
    expiry: date | str,
    at: pd.Timestamp | datetime | str,
    *,
    database: Database = None,
) -> dict[str, float]:
    """Put-call ratios at ``at``: ``pcr_oi`` (Σ PE OI / Σ CE OI, OI as of ``at``) and
    ``pcr_volume`` (same on the session's volume up to ``at``); NaN with no call OI/volume."""
    with _open(database) as db:
        snap = _snapshot(db, underlying, expiry, at, DEFAULT_RATE, 5, previous=False)
    return _pcr(snap.options)


def _bound(value: date | datetime | str | None, *, end: bool) -> pd.Timestamp | None:
    """A start/end bound: a date means the whole day (an end date includes that day)."""
    if value is None:
        return None
    if isinstance(value, str) and len(value.strip()) == 10:
        value = date.fromisoformat(value.strip())
    if isinstance(value, date) and not isinstance(value, datetime):
        day = pd.Timestamp(value).tz_localize(IST)
        return day + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1) if end else day
    return _minute(value)


def candles(
    contract: str,
    interval: str = "1minute",
    start: date | datetime | str | None = None,
    end: date | datetime | str | None = None,
    *,
    database: Database = None,
) -> pd.DataFrame:
    """One contract's candles at ``interval``, from ``start`` to ``end`` (both inclusive; a date
    means its whole day; default: everything collected).

    ``contract`` is an expired instrument key (``NSE_FO|54321|28-08-2025``) or a trading symbol
    (``NIFTY 24500 CE 28 AUG 25``, any case). ``interval``: ``1minute``, ``3minute``,
    ``5minute``, ``10minute``, ``15minute``, ``30minute``, ``60minute`` or ``day``; bars are
    aligned to the session open and never span sessions (see ``research.resample``). Columns:
    ``timestamp`` (bar start, IST), ``open``, ``high``, ``low``, ``close`` (float rupees),
    ``volume``, ``open_interest`` (int units). ``attrs``: ``expired_instrument_key``,
    ``trading_symbol``, ``partition_key``.
    """
    if interval not in INTERVAL_MINUTES:
        raise ResearchError(f"interval {interval!r} is not one of {', '.join(INTERVAL_MINUTES)}")
    try:
        lower, upper = _bound(start, end=False), _bound(end, end=True)
    except ValueError:
        raise ResearchError(f"start/end {start!r}, {end!r} are not dates or times") from None
    with _open(database) as db:
        found = db.execute(
            """
            SELECT DISTINCT expired_instrument_key, trading_symbol, partition_key FROM contracts
            WHERE expired_instrument_key = ? OR upper(trading_symbol) = upper(?)
            """,
            [contract, contract],
        ).fetchall()
        if not found:
            raise ResearchError(
                f"unknown contract {contract!r}: give an expired instrument key or a trading "
                "symbol listed in the contracts table of a collected partition"
            )
        if len({row[0] for row in found}) > 1:
            raise ResearchError(
                f"contract {contract!r} names {len(found)} contracts; give the expired instrument key"
            )
        key, symbol, partition_key = found[0]
        frame = db.execute(
            """
            SELECT "timestamp", open, high, low, close, volume, open_interest FROM candles
            WHERE partition_key = ? AND expired_instrument_key = ? AND "interval" = ?
              AND "timestamp" >= coalesce(?::TIMESTAMPTZ, '-infinity'::TIMESTAMPTZ)
              AND "timestamp" <= coalesce(?::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ)
            ORDER BY "timestamp"
            """,
            [partition_key, key, CANDLE_INTERVAL, lower, upper],
        ).fetchdf()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).dt.tz_convert(IST)
    bars = resample(frame, interval)
    bars.attrs.update(
        {"expired_instrument_key": key, "trading_symbol": symbol, "partition_key": partition_key}
    )
    return bars
