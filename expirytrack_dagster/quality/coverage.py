"""Coverage: the future and near-money options cover their sessions; how sparse far strikes are.

The rules read the day grid of contract_days.py, on the days the API answered from each
contract's first traded day on. Thin trading, which may simply be the market, is a WARN
(near-money options) or only reported (far strikes, labelled ``sparse``). The future is the
exception: it trades every minute in its front month, so a gap there is an ERROR, and so is a
future missing its first or last day.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from expirytrack_dagster.quality._frames import KEY
from expirytrack_dagster.quality.contract_days import ANSWERED_LABELS
from expirytrack_dagster.quality.result import Verdict, percent, top_rows
from expirytrack_dagster.quality.settings import PartitionScope, QualitySettings


def check_future_coverage(
    days: pd.DataFrame, scope: PartitionScope, settings: QualitySettings | None = None
) -> Verdict:
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
        description=f"the future covers >= {settings.coverage_threshold:.0%} of every "
        "front-month session",
        judged=judged,
        failing=strict & below,
        counts=counts,
        settings=settings,
    )


def check_near_money_coverage(
    days: pd.DataFrame, settings: QualitySettings | None = None
) -> Verdict:
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
    answered = days["label"].isin(ANSWERED_LABELS)
    counts = {
        "near_money_days": len(judged),
        "near_money_days_below": int(below.sum()),
        "near_money_days_under_threshold": int(under.sum()),
        "thin_market_days": int(judged.loc[~liquid, "trading_date"].nunique()),
        "contracts_below": int(judged.loc[below, KEY].nunique()),
        "unreferenced_option_days": int((answered & (days["moneyness"] == "unknown")).sum()),
    }
    return _coverage_result(
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
) -> Verdict:
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
    return Verdict(
        passed=True,
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
) -> Verdict:
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
    return Verdict(
        passed=failing == 0,
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
    return days[(days["moneyness"] == moneyness) & days["label"].isin(ANSWERED_LABELS)]


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
    description: str,
    judged: pd.DataFrame,
    failing: np.ndarray,
    counts: dict[str, int],
    settings: QualitySettings,
) -> Verdict:
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
    return Verdict(
        passed=not failing.any(),
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
