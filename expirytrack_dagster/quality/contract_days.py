"""The per-(contract, trading day) grid the completeness rules read: what was fetched and stored.

:func:`day_status` builds one row per (listed contract, trading day of the window) saying
what was fetched, what is stored, how much of the session it covers, how near the money an
option was that day, and what the rules make of it (its ``label``). The rules in
fetch_outcomes.py, coverage.py and silent_days.py are small functions of that frame, so the
expensive pass over the candles happens once per partition.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from expirytrack_dagster.calendar import sessions_between
from expirytrack_dagster.quality._frames import KEY, candle_clock, contract_codes, day_number
from expirytrack_dagster.quality.session import expected_candles
from expirytrack_dagster.quality.settings import PartitionScope, QualitySettings, interval_minutes

FETCH_PREFERENCE: dict[str, int] = {"complete": 0, "no_trades": 1, "unconfirmed": 2, "failed": 3}
"""When a (contract, day) has several recorded outcomes the best one wins: a retry that
succeeded supersedes the failure before it."""

DAY_STATUS_COLUMNS: list[str] = [
    KEY,
    "trading_symbol",
    "instrument_type",
    "strike_price",
    "trading_date",
    "moneyness",
    "expected_candles",
    "session_candles",
    "stored_candles",
    "fetched_candles",
    "coverage",
    "fetch_status",
    "error",
    "status",
    "label",
]
"""Columns of the :func:`day_status` frame, in order."""

ANSWERED_LABELS: tuple[str, ...] = ("complete", "gap", "sparse")
"""Labels of the days a coverage rule judges: the API answered and the contract had started
trading."""


def day_status(
    candles: pd.DataFrame,
    contracts: pd.DataFrame,
    fetch_status: pd.DataFrame,
    scope: PartitionScope,
    settings: QualitySettings | None = None,
) -> pd.DataFrame:
    """One row per (listed contract, trading day of the window), Databento-style.

    The window runs from ``scope.window_start`` to the earlier of its end and the expiry.

    - ``session_candles``: stored candles starting inside that day's session (drives coverage);
      ``stored_candles``: all stored candles dated that day; ``fetched_candles``: the
      ``candle_count`` the fetch recorded (NA when no outcome was recorded).
    - ``coverage``: session candles / expected candles, capped at 1 (duplicates are the
      uniqueness rule's business, not a reason to exceed 100 %).
    - ``moneyness``: ``future``; ``near`` or ``far`` for options, judged against that day's
      reference price (see :func:`_reference_prices`); ``unknown`` when the day has none.
    - ``status``: ``failed`` (the request failed), ``missing`` (no outcome recorded), else from
      the stored candles: ``no_trades`` (none), ``complete`` (coverage >= threshold) or
      ``partial``.
    - ``label``, what the rules make of it: ``failed``/``missing``/``complete`` as the status;
      ``before_first_trade`` for no-trade days before the contract's first traded (or failed)
      day, which is how a contract listed or a strike introduced mid-window looks; otherwise a
      partial or no-trade day is a ``gap`` for the future and near-money options and ``sparse``
      for far or unknown strikes.
    """
    settings = settings or QualitySettings()
    sessions = sessions_between(scope.window_start, scope.last_day)
    window_days = np.array([day_number(s.trading_date) for s in sessions], dtype=np.int64)
    listed = contracts.drop_duplicates(KEY, keep="first").reset_index(drop=True)
    n_contracts, n_days = len(listed), len(sessions)
    listed_keys = pd.Index(listed[KEY])

    daily = interval_minutes(scope.interval) is None
    stored, in_session, closes = _count_candles(candles, listed_keys, window_days, daily)
    fetch, errors, fetched = _place_outcomes(fetch_status, listed_keys, window_days)

    expected = np.array([expected_candles(s, scope.interval) for s in sessions], dtype=np.int64)
    grid = pd.DataFrame(
        {
            KEY: np.repeat(listed[KEY].to_numpy(dtype=object), n_days),
            "trading_symbol": np.repeat(listed["trading_symbol"].to_numpy(dtype=object), n_days),
            "instrument_type": np.repeat(listed["instrument_type"].to_numpy(dtype=object), n_days),
            "strike_price": np.repeat(listed["strike_price"].to_numpy(dtype=np.float64), n_days),
            "trading_date": np.tile(
                np.array([s.trading_date for s in sessions], object), n_contracts
            ),
            "expected_candles": np.tile(expected, n_contracts),
            "session_candles": in_session,
            "stored_candles": stored,
            "fetched_candles": pd.array(fetched, dtype="Int64"),
            "fetch_status": fetch,
            "error": errors,
        }
    )
    grid["coverage"] = np.minimum(in_session / np.maximum(grid["expected_candles"], 1), 1.0)
    reference = _reference_prices(listed, closes, n_days)
    grid["moneyness"] = _moneyness(listed, reference, n_days, settings)
    grid["status"] = _status(grid, settings)
    grid["label"] = _label(grid, n_contracts, n_days)
    return grid[DAY_STATUS_COLUMNS]


def _reference_prices(listed: pd.DataFrame, closes: pd.DataFrame, n_days: int) -> np.ndarray:
    """The price that decides which strikes are near the money, per window day (NaN if none).

    The future's daily close when the partition has a future that traded that day. Otherwise
    (weekly expiries have no future) the synthetic forward from put-call parity, strike + CE
    close - PE close, at the strike whose CE and PE closes are closest. ``closes`` holds the
    last in-session close per (contract row of ``listed``, window day): columns ``contract``,
    ``day``, ``close``.
    """
    reference = np.full(n_days, np.nan)
    kinds = listed["instrument_type"].to_numpy(dtype=object)
    futures = closes[kinds[closes["contract"].to_numpy()] == "FUT"]
    if not futures.empty:
        # One future per expiry; should there be two, the first listed decides.
        first = futures.sort_values(["contract", "day"]).drop_duplicates("day")
        reference[first["day"].to_numpy()] = first["close"].to_numpy()
    options = closes[np.isin(kinds[closes["contract"].to_numpy()], ("CE", "PE"))]
    options = options[np.isnan(reference[options["day"].to_numpy()])]
    if options.empty:
        return reference
    rows = options["contract"].to_numpy()
    quotes = pd.DataFrame(
        {
            "day": options["day"].to_numpy(),
            "strike": listed["strike_price"].to_numpy(dtype=np.float64)[rows],
            "side": kinds[rows],
            "close": options["close"].to_numpy(),
        }
    ).pivot_table(index=["day", "strike"], columns="side", values="close", aggfunc="mean")
    if not {"CE", "PE"} <= set(quotes.columns):
        return reference
    pairs = quotes.dropna(subset=["CE", "PE"]).reset_index()
    if pairs.empty:
        return reference
    pairs["spread"] = (pairs["CE"] - pairs["PE"]).abs()
    atm = pairs.loc[pairs.groupby("day")["spread"].idxmin()]
    reference[atm["day"].to_numpy()] = (atm["strike"] + atm["CE"] - atm["PE"]).to_numpy()
    return reference


def near_money_mask(
    strikes: np.ndarray, reference: np.ndarray, settings: QualitySettings
) -> np.ndarray:
    """days × strikes booleans: is the strike near the money that day (False when no reference).

    ``strikes`` sorted and distinct. By default the ``near_money_strikes`` listed strikes either
    side of the at-the-money strike (the listed strike closest to the reference; a tie goes to
    the lower strike), so 11 strikes with the default 5; with ``near_money_band`` set, strikes within that fraction of the price.
    """
    if strikes.size == 0:
        return np.zeros((reference.size, 0), dtype=bool)
    known = ~np.isnan(reference)[:, None]
    if settings.near_money_band is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            distance = np.abs(strikes[None, :] / reference[:, None] - 1.0)
        return known & (distance <= settings.near_money_band)
    filled = np.where(np.isnan(reference), 0.0, reference)
    atm = np.abs(strikes[None, :] - filled[:, None]).argmin(axis=1)
    steps = np.abs(np.arange(strikes.size)[None, :] - atm[:, None])
    return known & (steps <= settings.near_money_strikes)


def _count_candles(
    candles: pd.DataFrame, listed_keys: pd.Index, window_days: np.ndarray, daily: bool
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Stored and in-session candle counts per grid slot, and each slot's last session close.

    Grid slot = contract position * number of days + day position. Candles of unlisted contracts
    or outside the window are not counted here. A daily candle is stamped at midnight, outside
    the session hours, so for ``daily`` candles being on the window day is enough.
    """
    n_slots = len(listed_keys) * len(window_days)
    none = np.zeros(0, dtype=np.int64)
    empty = pd.DataFrame({"contract": none, "day": none, "close": np.zeros(0)})
    if candles.empty or n_slots == 0:
        return np.zeros(n_slots, np.int64), np.zeros(n_slots, np.int64), empty
    clock = candle_clock(candles["timestamp"])
    codes, distinct = contract_codes(candles[KEY])
    contract = listed_keys.get_indexer(distinct)[codes]
    n_days = len(window_days)
    day = np.minimum(np.searchsorted(window_days, clock.days), n_days - 1)
    counted = (contract >= 0) & (window_days[day] == clock.days)
    slot = np.where(counted, contract * n_days + day, 0)
    stored = np.bincount(slot[counted], minlength=n_slots)
    inside = counted if daily else counted & clock.in_session
    in_session = np.bincount(slot[inside], minlength=n_slots)
    # The day's close is the close of its latest candle inside the session; a scatter-max of
    # start times per slot finds it without sorting millions of rows.
    inside_slot, inside_wall = slot[inside], clock.wall_ns[inside]
    latest = np.full(n_slots, np.iinfo(np.int64).min)
    np.maximum.at(latest, inside_slot, inside_wall)
    is_last = inside_wall == latest[inside_slot]
    close_by_slot = np.full(n_slots, np.nan)
    close_by_slot[inside_slot[is_last]] = candles["close"].to_numpy(np.float64)[inside][is_last]
    traded = np.flatnonzero(in_session)
    closes = pd.DataFrame(
        {"contract": traded // n_days, "day": traded % n_days, "close": close_by_slot[traded]}
    )
    return stored, in_session, closes


def _place_outcomes(
    fetch_status: pd.DataFrame, listed_keys: pd.Index, window_days: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fetch status, error and recorded candle count per grid slot (None/NaN where absent)."""
    n_days = len(window_days)
    n_slots = len(listed_keys) * n_days
    status = np.full(n_slots, None, dtype=object)
    errors = np.full(n_slots, None, dtype=object)
    fetched = np.full(n_slots, np.nan)
    if fetch_status.empty or n_slots == 0:
        return status, errors, fetched
    contract = listed_keys.get_indexer(fetch_status[KEY])
    days = (
        pd.to_datetime(fetch_status["trading_date"])
        .to_numpy()
        .astype("datetime64[D]")
        .astype(np.int64)
    )
    day = np.minimum(np.searchsorted(window_days, days), n_days - 1)
    placed = (contract >= 0) & (window_days[day] == days)
    outcomes = pd.DataFrame(
        {
            "slot": contract[placed] * n_days + day[placed],
            "preference": fetch_status["status"].map(FETCH_PREFERENCE).fillna(3).to_numpy()[placed],
            "status": fetch_status["status"].to_numpy(dtype=object)[placed],
            "error": fetch_status["error"].to_numpy(dtype=object)[placed],
            "candle_count": fetch_status["candle_count"].to_numpy(dtype=np.float64)[placed],
        }
    )
    best = outcomes.sort_values(["slot", "preference"], kind="stable").drop_duplicates("slot")
    slots = best["slot"].to_numpy()
    status[slots] = best["status"].to_numpy()
    errors[slots] = best["error"].to_numpy()
    fetched[slots] = best["candle_count"].to_numpy()
    return status, errors, fetched


def _moneyness(
    listed: pd.DataFrame, reference: np.ndarray, n_days: int, settings: QualitySettings
) -> np.ndarray:
    kinds = listed["instrument_type"].to_numpy(dtype=object)
    strike = listed["strike_price"].to_numpy(dtype=np.float64)
    is_option = np.isin(kinds, ("CE", "PE")) & ~np.isnan(strike)
    strikes = np.unique(strike[is_option])
    near = near_money_mask(strikes, reference, settings)  # days × strikes
    label = np.full((len(listed), n_days), "unknown", dtype=object)
    label[kinds == "FUT", :] = "future"
    if strikes.size and n_days:
        option_rows = np.flatnonzero(is_option)
        strike_pos = np.searchsorted(strikes, strike[option_rows])
        near_rows = near[:, strike_pos].T  # options × days
        known = ~np.isnan(reference)[None, :]
        label[option_rows, :] = np.where(known, np.where(near_rows, "near", "far"), "unknown")
    return label.reshape(-1)


def _status(grid: pd.DataFrame, settings: QualitySettings) -> np.ndarray:
    fetch = grid["fetch_status"].to_numpy(dtype=object)
    return np.select(
        [
            fetch == "failed",
            fetch == "unconfirmed",
            pd.isna(fetch),
            grid["session_candles"].to_numpy() == 0,
            grid["coverage"].to_numpy() >= settings.coverage_threshold,
        ],
        ["failed", "unconfirmed", "missing", "no_trades", "complete"],
        default="partial",
    ).astype(object)


def _label(grid: pd.DataFrame, n_contracts: int, n_days: int) -> np.ndarray:
    if grid.empty:
        return np.zeros(0, dtype=object)
    status = grid["status"].to_numpy(dtype=object)
    fetch = grid["fetch_status"].to_numpy(dtype=object)
    # First day the contract traded, or at least was asked for and failed (which may hide trades).
    traded = (fetch == "complete") | (fetch == "failed") | (grid["stored_candles"].to_numpy() > 0)
    traded = traded.reshape(n_contracts, n_days)
    # A contract that never traded has no "before": its no-trade days are gaps or sparse.
    first = np.where(traded.any(axis=1), traded.argmax(axis=1), 0)
    before_first = (np.arange(n_days)[None, :] < first[:, None]).reshape(-1)
    strict = np.isin(grid["moneyness"].to_numpy(dtype=object), ("future", "near"))
    return np.select(
        [
            np.isin(status, ("failed", "unconfirmed", "missing", "complete")),
            before_first & (status == "no_trades"),
            strict,
        ],
        [status, "before_first_trade", "gap"],
        default="sparse",
    ).astype(object)
