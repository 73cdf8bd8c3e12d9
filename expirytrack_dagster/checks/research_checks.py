"""Checks on the research assets: IV bounds, put-call parity at ATM, max pain listed, roll gaps.

Each check is a pure function over the stored rows (tested without Dagster) and a thin
``@asset_check`` reading them from DuckDB; the partitioned ones judge one partition at a time.

- ``iv_within_bounds`` (option_greeks, WARN): every IV that is defined lies in
  [:data:`IV_MIN`, :data:`IV_MAX`] (1 % to 500 % a year). Undefined IVs (no fresh forward, a price
  outside the no-arbitrage bounds) are NULL by design and not counted.
- ``parity_at_atm`` (chain_metrics, ERROR): where both ATM legs traded recently, the put-call
  parity residual ``C − P − e^{−rτ}(F − K)`` is within :func:`parity_tolerance` (the forward is
  the median over up to three strikes, so a residual is that strike's disagreement with it).
- ``max_pain_listed`` (chain_metrics, ERROR): max pain is one of the partition's listed strikes.
- ``no_gaps_at_rolls`` (continuous_futures, ERROR): no trading session is missing between the last
  session of a future and the first session of the next one in the stitched series.
"""

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
    PreviewWarning,
    asset_check,
)

from expirytrack_dagster.assets.research import CHAIN_METRICS, CONTINUOUS_FUTURES, OPTION_GREEKS
from expirytrack_dagster.partitions import expiry_partitions
from expirytrack_dagster.quality.result import markdown_table
from expirytrack_dagster.research.continuous import rolls
from expirytrack_dagster.research.expiry_time import years_to_expiry
from expirytrack_dagster.research.settings import ResearchSettings
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster.storage.database import WRITER_POOL, connect

IV_MIN, IV_MAX = 0.01, 5.0
"""Sane implied volatility, annual: 1 % to 500 %."""
PARITY_TICKS = 4
"""Parity tolerance floor in option ticks (0.05 rupees each): quotes are rounded to a tick."""
PARITY_FRACTION = 0.001
"""Parity tolerance as a fraction of the forward (0.1 %: 24.5 points on NIFTY at 24 500)."""
OPTION_TICK = 0.05

DESCRIPTIONS = {
    "iv_within_bounds": f"Every defined IV lies in [{IV_MIN}, {IV_MAX}] (annual); NULL IVs are "
    "undefined by design (stale legs, price outside no-arbitrage bounds) and not counted.",
    "parity_at_atm": "Where both ATM legs traded recently, |C - P - e^(-r tau)(F - K)| is within "
    f"max({PARITY_TICKS} ticks, {PARITY_FRACTION:.1%} of the forward).",
    "max_pain_listed": "Max pain is one of the partition's listed strikes.",
    "no_gaps_at_rolls": "No trading session is missing where the continuous series rolls from "
    "one future to the next.",
}


def iv_out_of_bounds(greeks: pd.DataFrame) -> pd.DataFrame:
    """The rows whose IV is defined but outside [IV_MIN, IV_MAX]."""
    iv = greeks["iv"]
    return greeks[iv.notna() & ((iv < IV_MIN) | (iv > IV_MAX))]


def parity_tolerance(forward: pd.Series) -> pd.Series:
    """The parity residual allowed: ``max(PARITY_TICKS ticks, PARITY_FRACTION · forward)``."""
    return np.maximum(PARITY_TICKS * OPTION_TICK, PARITY_FRACTION * forward)


def parity_residuals(metrics: pd.DataFrame, rate: float, expiry: pd.Timestamp) -> pd.DataFrame:
    """Rows of ``chain_metrics`` with both ATM legs, with ``residual`` and ``tolerance`` added."""
    rows = metrics.dropna(subset=["atm_ce", "atm_pe", "forward", "atm_strike"]).copy()
    if rows.empty:
        return rows.assign(residual=[], tolerance=[])
    tau = years_to_expiry(rows["as_of"], pd.Timestamp(expiry).date())
    discount = np.exp(-rate * tau)
    rows["residual"] = (
        rows["atm_ce"] - rows["atm_pe"] - discount * (rows["forward"] - rows["atm_strike"])
    )
    rows["tolerance"] = parity_tolerance(rows["forward"])
    return rows


def unlisted_max_pain(metrics: pd.DataFrame, strikes: pd.Series) -> pd.DataFrame:
    """Rows of ``chain_metrics`` whose max pain is not a listed strike."""
    listed = set(strikes.dropna().astype(float))
    defined = metrics[metrics["max_pain"].notna()]
    return defined[~defined["max_pain"].astype(float).isin(listed)]


def roll_gaps(series: pd.DataFrame) -> pd.DataFrame:
    """The rolls of a stitched series with at least one trading session missing."""
    table = rolls(series)
    return table[table["missing_sessions"] > 0]


def _sample(frame: pd.DataFrame, columns: list[str]) -> MetadataValue:
    return MetadataValue.md(markdown_table(frame[columns], max_rows=10))


def _partitioned(**kwargs: Any) -> Callable[[Callable[..., AssetCheckResult]], Any]:
    """``@asset_check`` judging one partition at a time (partition-aware checks are a preview API
    in Dagster 1.13, used on purpose: its warning is silenced here rather than on every load)."""

    def decorate(fn: Callable[..., AssetCheckResult]) -> Any:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=PreviewWarning)
            return asset_check(partitions_def=expiry_partitions, pool=WRITER_POOL, **kwargs)(fn)

    return decorate


def _read(database: str, sql: str, params: list) -> pd.DataFrame:
    with connect(database, read_only=True) as db:
        return db.execute(sql, params).df()


@_partitioned(
    asset=OPTION_GREEKS, name="iv_within_bounds", description=DESCRIPTIONS["iv_within_bounds"]
)
def iv_within_bounds(
    context: AssetCheckExecutionContext, collection: CollectionSettings
) -> AssetCheckResult:
    """Every defined IV of the partition lies in [IV_MIN, IV_MAX]."""
    greeks = _read(
        collection.database,
        'SELECT expired_instrument_key, "timestamp", close, forward, iv FROM main.option_greeks '
        "WHERE partition_key = ?",
        [context.partition_key],
    )
    bad = iv_out_of_bounds(greeks)
    metadata = {
        "rows_with_iv": MetadataValue.int(int(greeks["iv"].notna().sum())),
        "rows_out_of_bounds": MetadataValue.int(len(bad)),
    }
    if len(bad):
        metadata["sample_rows"] = _sample(bad, list(bad.columns))
    return AssetCheckResult(passed=bad.empty, severity=AssetCheckSeverity.WARN, metadata=metadata)


@_partitioned(asset=CHAIN_METRICS, name="parity_at_atm", description=DESCRIPTIONS["parity_at_atm"])
def parity_at_atm(
    context: AssetCheckExecutionContext,
    collection: CollectionSettings,
    research: ResearchSettings,
) -> AssetCheckResult:
    """Put-call parity at the ATM strike holds within tolerance in every bucket with both legs."""
    key = context.partition_key
    metrics = _read(
        collection.database, "SELECT * FROM main.chain_metrics WHERE partition_key = ?", [key]
    )
    expiry = _read(
        collection.database,
        "SELECT min(expiry) AS expiry FROM main.contracts WHERE partition_key = ?",
        [key],
    )["expiry"].iloc[0]
    checked = parity_residuals(metrics, research.rate, expiry)
    bad = checked[checked["residual"].abs() > checked["tolerance"]]
    metadata = {
        "buckets_checked": MetadataValue.int(len(checked)),
        "buckets_outside_tolerance": MetadataValue.int(len(bad)),
        "max_abs_residual": MetadataValue.float(
            float(checked["residual"].abs().max()) if len(checked) else 0.0
        ),
    }
    if len(bad):
        metadata["sample_rows"] = _sample(
            bad, ["as_of", "forward", "atm_strike", "atm_ce", "atm_pe", "residual", "tolerance"]
        )
    return AssetCheckResult(passed=bad.empty, metadata=metadata)


@_partitioned(
    asset=CHAIN_METRICS, name="max_pain_listed", description=DESCRIPTIONS["max_pain_listed"]
)
def max_pain_listed(
    context: AssetCheckExecutionContext, collection: CollectionSettings
) -> AssetCheckResult:
    """Max pain is always one of the partition's listed strikes."""
    key = context.partition_key
    metrics = _read(
        collection.database,
        "SELECT as_of, max_pain FROM main.chain_metrics WHERE partition_key = ?",
        [key],
    )
    strikes = _read(
        collection.database,
        "SELECT strike_price FROM main.contracts WHERE partition_key = ? "
        "AND instrument_type IN ('CE', 'PE')",
        [key],
    )["strike_price"]
    bad = unlisted_max_pain(metrics, strikes)
    metadata = {
        "buckets_with_max_pain": MetadataValue.int(int(metrics["max_pain"].notna().sum())),
        "buckets_unlisted": MetadataValue.int(len(bad)),
    }
    if len(bad):
        metadata["sample_rows"] = _sample(bad, ["as_of", "max_pain"])
    return AssetCheckResult(passed=bad.empty, metadata=metadata)


@asset_check(
    asset=CONTINUOUS_FUTURES,
    name="no_gaps_at_rolls",
    description=DESCRIPTIONS["no_gaps_at_rolls"],
    pool=WRITER_POOL,
)
def no_gaps_at_rolls(collection: CollectionSettings) -> AssetCheckResult:
    """Every roll of every underlying's series joins consecutive trading sessions."""
    series = _read(
        collection.database,
        "SELECT underlying_symbol, expired_instrument_key, expiry, session_date, adjustment "
        'FROM main.continuous_futures ORDER BY underlying_symbol, "timestamp"',
        [],
    )
    series["expiry"] = pd.to_datetime(series["expiry"]).dt.date
    series["session_date"] = pd.to_datetime(series["session_date"]).dt.date
    bad = roll_gaps(series)
    metadata = {
        "rolls": MetadataValue.int(len(rolls(series))),
        "rolls_with_gaps": MetadataValue.int(len(bad)),
    }
    if len(bad):
        metadata["gaps"] = _sample(bad, list(bad.columns))
    return AssetCheckResult(passed=bad.empty, metadata=metadata)


RESEARCH_CHECKS = [iv_within_bounds, parity_at_atm, max_pain_listed, no_gaps_at_rolls]
"""Every research check, for ``ALL_CHECKS``."""
