"""Completeness: every contract fetched for every trading day, and enough minutes where it matters.

Everything here reads one frame, :func:`day_status`: a row per (listed contract, trading day of
the window) saying what was fetched, what is stored, how much of the session it covers, and how
near the money an option was that day. The rules are small functions of that frame, so the
expensive pass over the candles happens once per partition.

Which gaps are errors: data that was lost (a failed request, an outcome never recorded, candles
fetched but not stored, a future missing its first or last day) is an ERROR; thin trading, which
may simply be the market, is a WARN (near-money options) or only reported (far strikes, labelled
``sparse``). The future is the exception: it trades every minute in its front month, so a gap
there is an ERROR.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from expirytrack_dagster.calendar import sessions_between
from expirytrack_dagster.quality._frames import KEY, candle_clock, contract_codes, day_number
from expirytrack_dagster.quality.result import RuleResult, Severity, percent, top_rows
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

# Days a rule judges: the API answered and the contract had started trading.
_ANSWERED_LABELS = ("complete", "gap", "sparse")


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
      reference price (see :func:`reference_prices`); ``unknown`` when the day has none.
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


def check_fetch_outcomes(days: pd.DataFrame, settings: QualitySettings | None = None) -> RuleResult:
    """ERROR when data was lost on the way in, or is not final.

    Counts (contract, day) slots with no recorded outcome (``missing_outcomes``), with a failed
    request (``failed``), answered at a request span not verified (``unconfirmed``: the API may
    have cut the answer short, so the day is asked again next run), and where the stored candles differ from the count the fetch recorded
    (``count_mismatches``: written partly, twice, or not at all). ``worst`` lists the affected
    contracts with their first error message; ``samples`` the failed and missing days.
    """
    settings = settings or QualitySettings()
    fetch = days["fetch_status"]
    failed = (fetch == "failed").to_numpy()
    missing = fetch.isna().to_numpy()
    unconfirmed = (fetch == "unconfirmed").to_numpy()
    answered = fetch.isin(("complete", "no_trades")).to_numpy()
    mismatch = answered & (
        days["fetched_candles"].fillna(-1).to_numpy() != days["stored_candles"].to_numpy()
    )
    flagged = days.assign(
        failed=failed, missing=missing, unconfirmed=unconfirmed, mismatch=mismatch
    )[failed | missing | unconfirmed | mismatch]
    counts = {
        "contracts": int(days[KEY].nunique()),
        "contract_days": len(days),
        "missing_outcomes": int(missing.sum()),
        "failed": int(failed.sum()),
        "unconfirmed": int(unconfirmed.sum()),
        "count_mismatches": int(mismatch.sum()),
        "contracts_affected": int(flagged[KEY].nunique()),
    }
    worst = samples = None
    if not flagged.empty:
        per_contract = (
            flagged.groupby(KEY, sort=False)
            .agg(
                trading_symbol=("trading_symbol", "first"),
                failed_days=("failed", "sum"),
                missing_days=("missing", "sum"),
                unconfirmed_days=("unconfirmed", "sum"),
                mismatched_days=("mismatch", "sum"),
                first_error=("error", "first"),
            )
            .reset_index()
        )
        per_contract["lost_days"] = per_contract[
            ["failed_days", "missing_days", "unconfirmed_days", "mismatched_days"]
        ].sum(axis=1)
        worst = top_rows(
            per_contract.sort_values(["lost_days", KEY], ascending=[False, True], kind="stable"),
            settings.worst_contracts,
        )
        samples = top_rows(
            flagged[
                [KEY, "trading_date", "fetch_status", "error", "fetched_candles", "stored_candles"]
            ],
            settings.sample_rows,
        )
    lost = (
        counts["missing_outcomes"]
        + counts["failed"]
        + counts["unconfirmed"]
        + counts["count_mismatches"]
    )
    return RuleResult(
        name="fetch_outcomes",
        passed=lost == 0,
        severity="ERROR",
        description="every listed contract has a final fetch outcome (asked at a verified "
        "request span) for every trading day, and the stored candles match what was fetched",
        counts=counts,
        metrics={"lost_contract_days_pct": percent(lost, len(days))},
        worst=worst,
        samples=samples,
    )


def check_future_coverage(
    days: pd.DataFrame, scope: PartitionScope, settings: QualitySettings | None = None
) -> RuleResult:
    """ERROR when the future covers less than the threshold of a front-month session.

    Judged on days the API answered, from the future's first traded day on (failed or missing
    days are :func:`check_fetch_outcomes`' errors). Front month = within
    ``settings.future_front_month_days`` calendar days of expiry; earlier days, when the future
    is the thinly traded next or far month, are counted in ``early_days_below`` but do not fail.
    A partition without a future (weekly expiries) passes with ``futures`` = 0.
    """
    settings = settings or QualitySettings()
    judged = _judged(days, "future")
    strict = np.ones(len(judged), dtype=bool)
    if settings.future_front_month_days is not None:
        since = scope.expiry - timedelta(days=settings.future_front_month_days)
        strict = (judged["trading_date"] > since).to_numpy()
    below = (judged["coverage"] < settings.coverage_threshold).to_numpy()
    counts = {
        "futures": int(days.loc[days["moneyness"] == "future", KEY].nunique()),
        "future_days": len(judged),
        "front_month_days": int(strict.sum()),
        "front_month_days_below": int((strict & below).sum()),
        "early_days_below": int((~strict & below).sum()),
    }
    return _coverage_result(
        name="future_coverage",
        severity="ERROR",
        description=f"the future covers >= {settings.coverage_threshold:.0%} of every "
        "front-month session",
        judged=judged,
        failing=strict & below,
        counts=counts,
        settings=settings,
    )


def check_near_money_coverage(
    days: pd.DataFrame, settings: QualitySettings | None = None
) -> RuleResult:
    """WARN when, on a day its near-money peers traded nearly every minute, an option near the
    money covered less than the threshold and far less than those peers.

    Two tests keep this rule from crying wolf. Liquidity: a day is judged only when the median
    near-money coverage reaches ``near_money_liquid_median`` (default 90 %); on a thin underlying
    (BANKEX, a stock) near-money strikes swing between a few and most minutes from day to day,
    so no shortfall there tells lost data from a quiet market: such days are counted in
    ``thin_market_days``, not failed. Peers: a judged option is flagged when it covered under
    ``near_money_peer_fraction`` (default half) of that day's median. WARN, not ERROR: a single
    option can still go quiet for real. Judged on days the API answered, from the contract's
    first traded day on, when the option was near the money (see :func:`near_money_mask`).
    Days with no reference price cannot be judged and are counted in
    ``unreferenced_option_days``; ``near_money_days_under_threshold`` counts shortfalls before
    either test, for context.
    """
    settings = settings or QualitySettings()
    judged = _judged(days, "near")
    coverage = judged["coverage"]
    peers = coverage.groupby(judged["trading_date"]).transform("median")
    liquid = peers >= settings.near_money_liquid_median
    under = coverage < settings.coverage_threshold
    below = (liquid & under & (coverage < settings.near_money_peer_fraction * peers)).to_numpy()
    answered = days["label"].isin(_ANSWERED_LABELS)
    counts = {
        "near_money_days": len(judged),
        "near_money_days_below": int(below.sum()),
        "near_money_days_under_threshold": int(under.sum()),
        "thin_market_days": int(judged.loc[~liquid, "trading_date"].nunique()),
        "contracts_below": int(judged.loc[below, KEY].nunique()),
        "unreferenced_option_days": int((answered & (days["moneyness"] == "unknown")).sum()),
    }
    return _coverage_result(
        name="near_money_coverage",
        severity="WARN",
        description=f"on liquid days, options near the money cover >= "
        f"{settings.coverage_threshold:.0%} of the session or at least "
        f"{settings.near_money_peer_fraction:.0%} of what their peers covered",
        judged=judged,
        failing=below,
        counts=counts,
        settings=settings,
    )


def check_far_strike_coverage(
    days: pd.DataFrame, settings: QualitySettings | None = None
) -> RuleResult:
    """Report only (always passes): how sparse far strikes are, as a coverage distribution.

    Far strikes trade when someone wants them; their gaps are labelled ``sparse``, never failed.
    ``metrics`` carry coverage quartiles (``coverage_p0`` ... ``coverage_p100``, in %) and the
    ``counts`` a histogram of contract-days per coverage band (see :func:`coverage_histogram`).
    """
    settings = settings or QualitySettings()
    judged = _judged(days, "far")
    coverage = judged["coverage"].to_numpy(dtype=np.float64)
    counts = {
        "far_days": len(judged),
        "sparse_days": int((judged["label"] == "sparse").sum()),
        "far_contracts": int(judged[KEY].nunique()),
    }
    counts |= coverage_histogram(coverage, settings)
    metrics: dict[str, float] = {}
    if coverage.size:
        points = (0, 25, 50, 75, 100)
        quartiles = np.percentile(coverage, points) * 100.0
        metrics = {f"coverage_p{q}": float(v) for q, v in zip(points, quartiles, strict=True)}
        metrics["coverage_mean"] = float(coverage.mean() * 100.0)
    per_contract = _per_contract(judged, coverage < settings.coverage_threshold)
    per_contract = per_contract[per_contract["days_below"] > 0]  # the sparse ones, sparsest first
    return RuleResult(
        name="far_strike_coverage",
        passed=True,
        severity="WARN",
        description="far strikes: coverage distribution (gaps are sparse trading, not failures)",
        counts=counts,
        metrics=metrics,
        worst=top_rows(
            per_contract.sort_values(["mean_coverage", KEY], kind="stable"),
            settings.worst_contracts,
        ),
        samples=None,
    )


def coverage_histogram(coverage: np.ndarray, settings: QualitySettings) -> dict[str, int]:
    """Contract-days per coverage band, keyed like ``coverage_25_50pct`` (lower bound inclusive).

    Bands run from 0 through ``settings.coverage_histogram_edges`` to the coverage threshold,
    whose band (``coverage_99_100pct`` by default) holds the days that count as complete.
    """
    threshold = settings.coverage_threshold
    edges = [0.0, *(e for e in settings.coverage_histogram_edges if 0 < e < threshold)]
    edges += [threshold, np.inf]
    binned = np.histogram(coverage, bins=edges)[0]
    return {
        f"coverage_{lo * 100:g}_{min(hi, 1.0) * 100:g}pct": int(n)
        for lo, hi, n in zip(edges[:-1], edges[1:], binned, strict=True)
    }


def check_future_boundary_days(
    days: pd.DataFrame, scope: PartitionScope, settings: QualitySettings | None = None
) -> RuleResult:
    """ERROR when a future lacks candles on its first or last trading day of the window.

    The last day is the window's last trading day (no later than expiry). The first day is the
    first trading day on or after both the window start and the first day the fetch says the
    contract traded (or failed): a window may open before the future was listed, and those
    days answer "no trades". A future that never traded in the window counts as
    ``futures_without_trades``. Weekly expiries have no future and pass with ``futures`` = 0.
    """
    settings = settings or QualitySettings()
    futures = days[days["moneyness"] == "future"]
    boundary: list[pd.DataFrame] = []
    never_traded = 0
    for _, rows in futures.groupby(KEY, sort=True):  # one future per expiry, so a loop of one
        # Leading no-trade (unlisted yet) and unrecorded days are skipped; the latter are
        # check_fetch_outcomes' errors already.
        traded = rows["fetch_status"].isin(("complete", "failed")) | (rows["stored_candles"] > 0)
        if not traded.any():
            never_traded += 1
            continue
        boundary.append(rows[traded.to_numpy()].head(1).assign(boundary="first"))
        boundary.append(rows.tail(1).assign(boundary="last"))
    ends = pd.concat(boundary) if boundary else futures.head(0).assign(boundary=[])
    absent = ends[ends["stored_candles"] == 0]
    counts = {
        "futures": int(futures[KEY].nunique()),
        "first_day_missing": int((absent["boundary"] == "first").sum()),
        "last_day_missing": int((absent["boundary"] == "last").sum()),
        "futures_without_trades": never_traded,
    }
    failing = counts["first_day_missing"] + counts["last_day_missing"] + never_traded
    return RuleResult(
        name="future_boundary_days",
        passed=failing == 0,
        severity="ERROR",
        description="the future has candles on its first and last trading day of the window",
        counts=counts,
        metrics={},
        worst=None,
        samples=top_rows(
            absent[[KEY, "boundary", "trading_date", "fetch_status", "error", "stored_candles"]],
            settings.sample_rows,
        ),
    )


def _judged(days: pd.DataFrame, moneyness: str) -> pd.DataFrame:
    """Contract-days of one moneyness that a coverage rule judges (answered, after first trade)."""
    return days[(days["moneyness"] == moneyness) & days["label"].isin(_ANSWERED_LABELS)]


def _per_contract(judged: pd.DataFrame, failing: np.ndarray) -> pd.DataFrame:
    return (
        judged.assign(days_below=failing)
        .groupby(KEY, sort=False)
        .agg(
            trading_symbol=("trading_symbol", "first"),
            days=("coverage", "size"),
            days_below=("days_below", "sum"),
            min_coverage=("coverage", "min"),
            mean_coverage=("coverage", "mean"),
        )
        .reset_index()
    )


def _coverage_result(
    *,
    name: str,
    severity: Severity,
    description: str,
    judged: pd.DataFrame,
    failing: np.ndarray,
    counts: dict[str, int],
    settings: QualitySettings,
) -> RuleResult:
    per_contract = _per_contract(judged, failing)
    worst = top_rows(
        per_contract.sort_values(
            ["days_below", "mean_coverage", KEY], ascending=[False, True, True], kind="stable"
        ),
        settings.worst_contracts,
    )
    shortfalls = judged[failing].sort_values(["coverage", "trading_date"], kind="stable")
    samples = top_rows(
        shortfalls[[KEY, "trading_date", "session_candles", "expected_candles", "coverage"]],
        settings.sample_rows,
    )
    coverage = judged["coverage"]
    return RuleResult(
        name=name,
        passed=not failing.any(),
        severity=severity,
        description=description,
        counts=counts,
        metrics={
            "failing_days_pct": percent(int(failing.sum()), len(judged)),
            "mean_coverage_pct": float(coverage.mean() * 100.0) if len(judged) else 0.0,
            "min_coverage_pct": float(coverage.min() * 100.0) if len(judged) else 0.0,
        },
        worst=worst,
        samples=samples,
    )
