"""What an export takes from the database: the selection (underlyings, expiries, contracts, strikes,
time range, interval) and the one SQL query that streams its rows.

A selection is resolved against the database in two small queries (which partitions, which
contracts) and then read by one query whose rows follow :data:`exports.rows.ROW_SCHEMA`, in
the documented order. Resampled intervals are made in that query by DuckDB, never in Python:
bars start at the session open (09:15 IST on a regular day; a special session's own open) and
never span two sessions — the same bars as ``research.resample`` makes in pandas.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import duckdb
import pandas as pd
import pyarrow as pa

from expirytrack_dagster.calendar import IST, sessions_between
from expirytrack_dagster.exports.rows import Part
from expirytrack_dagster.research.resample import INTERVAL_MINUTES
from expirytrack_dagster.storage.stores import recorded_source

CONTRACT_TYPES = ("CE", "PE", "FUT")
EXPIRY_KINDS = ("all", "monthly", "weekly")
STORED_INTERVAL = "1minute"


class ExportError(ValueError):
    """The selection cannot be exported: one line saying which part of it and why."""


@dataclass(frozen=True)
class Selection:
    """Which candles to export, and at which interval.

    - ``underlyings``: symbols such as ``NIFTY`` (at least one).
    - ``expiries``: exact expiry dates; or ``expiry_from``/``expiry_to`` (inclusive); and
      ``expiry_kind``: ``all``, ``monthly`` or ``weekly``.
    - ``types``: any of ``CE``, ``PE``, ``FUT``.
    - strikes: ``strike_min``/``strike_max`` (inclusive), or ``atm`` = N strikes either side of
      each expiry's ATM strike at the minute ``atm_at`` (the listed strike nearest the synthetic
      forward, as ``research.option_chain`` defines it). Futures are never filtered by strike.
    - ``start``/``end``: candle time range, inclusive; a date means its whole day (IST).
    - ``interval``: ``1minute`` (as stored) or ``3minute`` … ``60minute``, ``day``.
    """

    underlyings: tuple[str, ...]
    expiries: tuple[date, ...] = ()
    expiry_from: date | None = None
    expiry_to: date | None = None
    expiry_kind: str = "all"
    types: tuple[str, ...] = CONTRACT_TYPES
    strike_min: float | None = None
    strike_max: float | None = None
    atm: int | None = None
    atm_at: datetime | None = None
    start: datetime | date | None = None
    end: datetime | date | None = None
    interval: str = STORED_INTERVAL

    def __post_init__(self) -> None:
        object.__setattr__(self, "underlyings", tuple(s.strip().upper() for s in self.underlyings))
        object.__setattr__(self, "types", tuple(t.strip().upper() for t in self.types))
        if not self.underlyings or not all(self.underlyings):
            raise ExportError("the selection names no underlying: give at least one, e.g. NIFTY")
        unknown = sorted(set(self.types) - set(CONTRACT_TYPES))
        if unknown or not self.types:
            raise ExportError(
                f"contract types {', '.join(unknown) or '(none)'} are not allowed: "
                f"choose from {', '.join(CONTRACT_TYPES)}"
            )
        if self.expiry_kind not in EXPIRY_KINDS:
            raise ExportError(
                f"expiry kind {self.expiry_kind!r} is not one of {', '.join(EXPIRY_KINDS)}"
            )
        if self.interval not in INTERVAL_MINUTES:
            raise ExportError(
                f"interval {self.interval!r} is not one of {', '.join(INTERVAL_MINUTES)}"
            )
        if self.expiries and (self.expiry_from or self.expiry_to):
            raise ExportError("give either a list of expiries or an expiry range, not both")
        if self.expiry_from and self.expiry_to and self.expiry_from > self.expiry_to:
            raise ExportError(f"expiry range {self.expiry_from} to {self.expiry_to} is empty")
        if self.atm is not None:
            if self.atm < 0:
                raise ExportError(f"ATM ± {self.atm} strikes: N must be 0 or more")
            if self.atm_at is None:
                raise ExportError("ATM ± N strikes needs the reference minute (--at)")
            if self.strike_min is not None or self.strike_max is not None:
                raise ExportError("give either a strike range or ATM ± N strikes, not both")
            if set(self.types) == {"FUT"}:
                raise ExportError(
                    "ATM ± N strikes chooses options, and only futures (FUT) were asked for: "
                    "add CE and/or PE to the contract types, or drop ATM ± N"
                )
        if (
            self.strike_min is not None
            and self.strike_max is not None
            and self.strike_min > self.strike_max
        ):
            raise ExportError(f"strike range {self.strike_min:g} to {self.strike_max:g} is empty")
        lower, upper = self.time_bounds()
        if lower is not None and upper is not None and lower > upper:
            raise ExportError(f"time range {self.start} to {self.end} is empty")

    def time_bounds(self) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        """``start``/``end`` as IST timestamps (an end date includes its whole day)."""
        try:
            return _bound(self.start, end=False), _bound(self.end, end=True)
        except ValueError:
            raise ExportError(
                f"time range {self.start!r} to {self.end!r}: give dates (YYYY-MM-DD) or minutes "
                "('YYYY-MM-DD HH:MM', IST)"
            ) from None

    def describe(self) -> dict[str, object]:
        """The selection as plain JSON values (for the manifest and run metadata)."""
        lower, upper = self.time_bounds()
        return {
            "underlyings": list(self.underlyings),
            "expiries": [d.isoformat() for d in self.expiries],
            "expiry_from": self.expiry_from.isoformat() if self.expiry_from else None,
            "expiry_to": self.expiry_to.isoformat() if self.expiry_to else None,
            "expiry_kind": self.expiry_kind,
            "types": list(self.types),
            "strike_min": self.strike_min,
            "strike_max": self.strike_max,
            "atm": self.atm,
            "atm_at": pd.Timestamp(self.atm_at).isoformat() if self.atm_at else None,
            "start": lower.isoformat() if lower is not None else None,
            "end": upper.isoformat() if upper is not None else None,
            "interval": self.interval,
        }


def _bound(value: datetime | date | str | None, *, end: bool) -> pd.Timestamp | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        value = date.fromisoformat(text) if len(text) == 10 else pd.Timestamp(text)
    if isinstance(value, date) and not isinstance(value, datetime):
        day = pd.Timestamp(value).tz_localize(IST)
        return day + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1) if end else day
    stamp = pd.Timestamp(value)
    return stamp.tz_localize(IST) if stamp.tzinfo is None else stamp.tz_convert(IST)


@dataclass(frozen=True)
class Resolved:
    """A selection matched against one database: its partitions and contracts."""

    selection: Selection
    partitions: pd.DataFrame  # partition_key, underlying, expiry, is_monthly
    contracts: pd.DataFrame  # partition_key, expired_instrument_key + the row fields
    source: str | None

    @property
    def synthetic(self) -> bool:
        """True when the database holds the sandbox's synthetic data."""
        return self.source == "sandbox"


def resolve(db: duckdb.DuckDBPyConnection, selection: Selection) -> Resolved:
    """Which partitions and contracts ``selection`` takes from ``db``; an empty part is an error
    naming what matched nothing."""
    partitions = _partitions(db, selection)
    contracts = db.execute(
        """
        SELECT k.partition_key, k.expired_instrument_key, k.trading_symbol, k.instrument_type,
               k.strike_price, coalesce(k.weekly, NOT e.is_monthly) AS weekly,
               e.underlying_symbol AS underlying, e.expiry
        FROM main.contracts k JOIN main.expiries e USING (partition_key)
        WHERE k.partition_key IN (SELECT unnest($keys)) AND k.instrument_type IN (SELECT unnest($types))
        ORDER BY e.underlying_symbol, e.expiry, k.instrument_type, k.strike_price,
                 k.expired_instrument_key
        """,
        {"keys": list(partitions["partition_key"]), "types": list(selection.types)},
    ).df()
    if contracts.empty:
        raise ExportError(
            f"no {'/'.join(selection.types)} contracts in the {len(partitions)} selected "
            f"partition(s) ({', '.join(partitions['partition_key'])})"
        )
    contracts = _strikes(db, selection, partitions, contracts)
    return Resolved(selection, partitions, contracts, recorded_source(db))


def _partitions(db: duckdb.DuckDBPyConnection, selection: Selection) -> pd.DataFrame:
    found = db.execute(
        """
        SELECT DISTINCT partition_key, underlying_symbol AS underlying, expiry, is_monthly
        FROM main.expiries WHERE underlying_symbol IN (SELECT unnest($underlyings))
        ORDER BY underlying_symbol, expiry
        """,
        {"underlyings": list(selection.underlyings)},
    ).df()
    found["expiry"] = pd.to_datetime(found["expiry"]).dt.date
    missing = sorted(set(selection.underlyings) - set(found["underlying"]))
    if missing:
        raise ExportError(
            f"no collected partition of {', '.join(missing)} in this database "
            "(`expirytrack partitions SYMBOL` lists what can be collected)"
        )
    kept = found
    if selection.expiries:
        kept = kept[kept["expiry"].isin(set(selection.expiries))]
        if kept.empty:
            days = ", ".join(d.isoformat() for d in selection.expiries)
            raise ExportError(f"no collected partition of {_names(selection)} expires on {days}")
    if selection.expiry_from:
        kept = kept[kept["expiry"] >= selection.expiry_from]
    if selection.expiry_to:
        kept = kept[kept["expiry"] <= selection.expiry_to]
    if kept.empty:
        raise ExportError(
            f"no collected partition of {_names(selection)} expires between "
            f"{selection.expiry_from or 'the first'} and {selection.expiry_to or 'the last'}"
        )
    if selection.expiry_kind != "all":
        kept = kept[kept["is_monthly"] == (selection.expiry_kind == "monthly")]
        if kept.empty:
            raise ExportError(
                f"none of the selected expiries of {_names(selection)} is {selection.expiry_kind}"
            )
    return kept.reset_index(drop=True)


def _names(selection: Selection) -> str:
    return "/".join(selection.underlyings)


def _strike(value: float | None) -> str:
    return "any" if value is None else f"{value:g}"


def _strikes(
    db: duckdb.DuckDBPyConnection,
    selection: Selection,
    partitions: pd.DataFrame,
    contracts: pd.DataFrame,
) -> pd.DataFrame:
    is_future = contracts["instrument_type"] == "FUT"
    strike = contracts["strike_price"]
    if selection.atm is None:
        keep = is_future | (
            strike.ge(selection.strike_min if selection.strike_min is not None else -float("inf"))
            & strike.le(selection.strike_max if selection.strike_max is not None else float("inf"))
        )
        if not (keep & ~is_future).any() and set(selection.types) - {"FUT"}:
            raise ExportError(
                f"no listed strike lies between {_strike(selection.strike_min)} and "
                f"{_strike(selection.strike_max)}"
            )
        return contracts[keep].reset_index(drop=True)
    from expirytrack_dagster.research.api import ResearchError, option_chain

    keep = is_future.copy()
    for row in partitions.itertuples():
        try:
            chain = option_chain(row.underlying, row.expiry, selection.atm_at, database=db)
        except ResearchError as exc:
            raise ExportError(f"ATM of {row.partition_key} at {selection.atm_at}: {exc}") from None
        centre = chain.attrs.get("atm_strike")
        if centre is None or pd.isna(centre):
            raise ExportError(
                f"{row.partition_key} has no ATM strike at {selection.atm_at} (no forward: too "
                "few legs traded then); choose another minute or a strike range"
            )
        of_partition = contracts["partition_key"] == row.partition_key
        listed = sorted(strike[of_partition & ~is_future].unique())
        if float(centre) not in listed:
            raise ExportError(
                f"{row.partition_key}: the ATM strike {float(centre):g} at {selection.atm_at} is "
                "not among the selected contracts' strikes"
            )
        at = listed.index(float(centre))
        chosen = listed[max(0, at - selection.atm) : at + selection.atm + 1]
        keep |= of_partition & strike.isin(chosen)
    return contracts[keep].reset_index(drop=True)


_ORDER = 'ORDER BY ordinal, "timestamp"'
"""The documented row order (rows.py): ``ordinal`` numbers the contracts in that order, so the
sort compares two integers instead of five columns."""

_FILTER = """c.partition_key = $partition_key AND c."interval" = '1minute'
      AND c."timestamp" >= coalesce($lower::TIMESTAMPTZ, '-infinity'::TIMESTAMPTZ)
      AND c."timestamp" <= coalesce($upper::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ)"""

_CHUNK = "k.ordinal BETWEEN $first_ordinal AND $last_ordinal"
"""One run of a partition's contracts (ordinals are consecutive within a partition): the rows
query sorts one run at a time, so no sort outgrows the export's memory (``Part.chunks``)."""

CHUNK_ROWS = 600_000
"""At most this many stored candles per sorted run (a contract with more is a run alone): the
sort of a run fits DuckDB's export memory without spilling to disk (``exports.run``)."""

_CONTRACT_FIELDS = (
    # (ROW_SCHEMA column, _export_contracts column, DuckDB list type)
    ("underlying", "underlying", "VARCHAR[]"),
    ("expiry", "expiry", "DATE[]"),
    ("instrument_key", "expired_instrument_key", "VARCHAR[]"),
    ("trading_symbol", "trading_symbol", "VARCHAR[]"),
    ("instrument_type", "instrument_type", "VARCHAR[]"),
    ("strike", "strike_price", "DOUBLE[]"),
    ("weekly", "weekly", "BOOLEAN[]"),
)

_COLUMNS = (
    ", ".join(f"(${name}::{kind})[ordinal + 1] AS {name}" for name, _, kind in _CONTRACT_FIELDS)
    + ', "timestamp", open, high, low, close, volume, open_interest'
)
"""The ROW_SCHEMA columns of a sorted row: a contract's fields are looked up by its ordinal in
parameter lists after the sort, so the sort carries integers and numbers, never strings (a
narrower sort spills less within the export's memory limit)."""

_MINUTES = f"""
    SELECT {_COLUMNS} FROM (
        SELECT k.ordinal, c."timestamp", c.open, c.high, c.low, c.close, c.volume,
               c.open_interest
        FROM main.candles c JOIN _export_contracts k USING (partition_key, expired_instrument_key)
        WHERE {_FILTER} AND {_CHUNK}
        {_ORDER}
    )
"""

_BARS = f"""
    WITH minutes AS (
        SELECT k.ordinal, c."timestamp", c.open, c.high, c.low, c.close, c.volume,
               c.open_interest,
               -- The session's open; a day the calendar does not know opens at 09:15 IST.
               coalesce(
                   s.session_open,
                   timezone('Asia/Kolkata',
                            CAST(timezone('Asia/Kolkata', c."timestamp") AS DATE)::TIMESTAMP
                            + INTERVAL 555 MINUTE)
               ) AS session_open
        FROM main.candles c
        JOIN _export_contracts k USING (partition_key, expired_instrument_key)
        LEFT JOIN _export_sessions s
          ON s.trading_date = CAST(timezone('Asia/Kolkata', c."timestamp") AS DATE)
        WHERE {_FILTER} AND {_CHUNK}
    )
    SELECT {_COLUMNS} FROM (
        SELECT ordinal, {{bar}} AS "timestamp",
               arg_min(open, "timestamp") AS open, max(high) AS high, min(low) AS low,
               arg_max(close, "timestamp") AS close, sum(volume)::BIGINT AS volume,
               arg_max(open_interest, "timestamp") AS open_interest
        FROM minutes
        GROUP BY ordinal, {{bar}}
        {_ORDER}
    )
"""


def _contract_lists(contracts: pd.DataFrame) -> dict[str, list[object]]:
    """Each contract field as a list in ordinal order (the parameters ``_COLUMNS`` indexes)."""
    lists: dict[str, list[object]] = {}
    for name, column, _ in _CONTRACT_FIELDS:
        values = contracts[column]
        if name == "expiry":
            values = pd.to_datetime(values).dt.date
        lists[name] = [None if pd.isna(v) else v for v in values.tolist()]
    lists["weekly"] = [bool(v) for v in lists["weekly"]]
    return lists


def rows_query(resolved: Resolved) -> tuple[str, dict[str, object]]:
    """The SQL (and its parameters) giving one run of a partition's rows in :data:`ROW_SCHEMA`
    order.

    The parameters ``partition_key``, ``first_ordinal`` and ``last_ordinal`` are left for the
    caller (``exports.rows.RowSource`` runs the query once per run of :func:`parts`, in order:
    each sort is one run's, whatever the selection's size). Needs :func:`register` to have been
    called on the connection first.
    """
    minutes = INTERVAL_MINUTES[resolved.selection.interval]
    lower, upper = resolved.selection.time_bounds()
    params: dict[str, object] = {
        "lower": _py(lower),
        "upper": _py(upper),
        **_contract_lists(resolved.contracts),
    }
    if minutes == 1:
        return _MINUTES, params
    if minutes is None:
        bar = "session_open"
    else:
        bar = (
            "session_open + to_minutes("
            f'(epoch("timestamp") - epoch(session_open))::BIGINT // 60 // {minutes} * {minutes})'
        )
    return _BARS.format(bar=bar), params


def register(db: duckdb.DuckDBPyConnection, resolved: Resolved) -> None:
    """Register the selection's contracts and, for resampled bars, the session opens of the
    dates it spans, as tables the rows query joins."""
    contracts = resolved.contracts.assign(ordinal=range(len(resolved.contracts)))
    db.register("_export_contracts", pa.Table.from_pandas(contracts, preserve_index=False))
    if INTERVAL_MINUTES[resolved.selection.interval] == 1:
        return  # stored minutes: no bar to align
    first = min(resolved.partitions["expiry"]) - timedelta(days=400)
    last = max(resolved.partitions["expiry"])
    sessions = sessions_between(first, last)
    opens = pd.DataFrame(
        {
            "trading_date": [s.trading_date for s in sessions],
            "session_open": pd.to_datetime([s.open for s in sessions], utc=True),
        }
    )
    db.register("_export_sessions", pa.Table.from_pandas(opens, preserve_index=False))


def count_rows(db: duckdb.DuckDBPyConnection, resolved: Resolved) -> int:
    """How many rows the export will write (the progress bar's total)."""
    lower, upper = resolved.selection.time_bounds()
    minutes = INTERVAL_MINUTES[resolved.selection.interval]
    if minutes == 1:
        ((count,),) = db.execute(
            f"""
            SELECT count(*) FROM main.candles c
            JOIN _export_contracts k USING (partition_key, expired_instrument_key)
            WHERE {_FILTER.replace("c.partition_key = $partition_key AND ", "")}
            """,
            {"lower": _py(lower), "upper": _py(upper)},
        ).fetchall()
        return int(count)
    query, params = rows_query(resolved)
    every = {"first_ordinal": 0, "last_ordinal": len(resolved.contracts)}
    total = 0
    for key in resolved.partitions["partition_key"]:
        ((count,),) = db.execute(
            f"SELECT count(*) FROM ({query})", {**params, **every, "partition_key": key}
        ).fetchall()
        total += int(count)
    return total


def parts(
    db: duckdb.DuckDBPyConnection, resolved: Resolved, max_rows: int = CHUNK_ROWS
) -> tuple[Part, ...]:
    """The selection's partitions in stream order, each cut into runs of whole, consecutive
    contracts holding at most ``max_rows`` stored candles in the time range (one GROUP BY over
    the selection). Streaming run after run gives the same rows in the same order as one sort of
    the partition, with each sort small enough to stay in memory. Needs :func:`register`."""
    lower, upper = resolved.selection.time_bounds()
    counts = dict(
        db.execute(
            f"""
            SELECT k.ordinal, count(*) FROM main.candles c
            JOIN _export_contracts k USING (partition_key, expired_instrument_key)
            WHERE {_FILTER.replace("c.partition_key = $partition_key AND ", "")}
            GROUP BY k.ordinal
            """,
            {"lower": _py(lower), "upper": _py(upper)},
        ).fetchall()
    )
    keys = resolved.contracts["partition_key"]
    found = []
    for row in resolved.partitions.itertuples():
        chunks: list[tuple[int, int]] = []
        first = last = -1
        size = 0
        for ordinal in map(int, keys.index[keys == row.partition_key]):  # row number (register)
            rows = counts.get(ordinal, 0)
            if first >= 0 and size + rows > max_rows:
                chunks.append((first, last))
                first, size = -1, 0
            if first < 0:
                first = ordinal
            last, size = ordinal, size + rows
        if first >= 0:
            chunks.append((first, last))
        found.append(Part(row.partition_key, row.underlying, row.expiry, tuple(chunks)))
    return tuple(found)


def _py(stamp: pd.Timestamp | None) -> datetime | None:
    return stamp.to_pydatetime() if stamp is not None else None
