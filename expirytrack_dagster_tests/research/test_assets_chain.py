"""option_greeks, option_chain_daily and chain_metrics on a real collected partition.

One NIFTY monthly partition with strikes 500 apart (``TINY_NIFTY``: 17 contracts; what is computed
per minute and per session does not depend on the chain's width) is collected, checked and
researched once for the module (in one run, as the collect job would). The vectorised tables are compared with the research core's
one-minute definitions (``chain_asof``, ``synthetic_forward``, ``atm_strike``, ``pcr``,
``max_pain``, ``implied_vol``) at sampled minutes, and the daily rows with plain SQL.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from dagster import ExecuteInProcessResult

from expirytrack_dagster.assets.research import chain_research
from expirytrack_dagster.research import black76
from expirytrack_dagster.research.asof import chain_asof
from expirytrack_dagster.research.expiry_time import years_to_expiry
from expirytrack_dagster.research.forward import atm_strike, synthetic_forward
from expirytrack_dagster.research.oi import max_pain, pcr
from expirytrack_dagster.research.settings import ResearchSettings
from expirytrack_dagster_tests.pipeline import TINY_NIFTY, Pipeline
from expirytrack_dagster_tests.research.assets_pipeline import (
    AUGUST,
    check_verdicts,
    materialized,
    nifty_pipeline,
    run,
)

RATE = ResearchSettings().rate
MAX_AGE = ResearchSettings().max_age_minutes


@pytest.fixture(scope="module")
def researched(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Pipeline, str, ExecuteInProcessResult]]:
    root = tmp_path_factory.mktemp("chain")
    with nifty_pipeline(root, profile=TINY_NIFTY) as p:
        key = p.partition("NIFTY", AUGUST)
        yield p, key, run(p, key)


@pytest.fixture(scope="module")
def option_candles(researched) -> pd.DataFrame:
    """The partition's option candles in the long form the research core takes."""
    p, key, _ = researched
    frame = p.query_frame(
        'SELECT c.expired_instrument_key, c."timestamp", c.open, c.high, c.low, c.close, '
        "c.volume, c.open_interest, k.strike_price AS strike, k.instrument_type AS option_type "
        "FROM candles c JOIN contracts k USING (partition_key, expired_instrument_key) "
        "WHERE c.partition_key = ? AND k.instrument_type IN ('CE', 'PE')",
        [key],
    )
    frame["timestamp"] = frame["timestamp"].dt.tz_convert("Asia/Kolkata")
    return frame


def test_the_three_tables_are_materialised_after_the_checks_and_pass_theirs(researched) -> None:
    p, key, result = researched
    assert result.success
    assert {"option_greeks", "option_chain_daily", "chain_metrics"} <= materialized(result)
    verdicts = check_verdicts(result)
    assert verdicts["parity_at_atm"] and verdicts["max_pain_listed"]
    for table in ("option_greeks", "option_chain_daily", "chain_metrics"):
        (rows,) = p.query(f"SELECT count(*) FROM {table} WHERE partition_key = ?", [key])[0]
        assert rows > 0, table
    (options,) = p.query(
        "SELECT count(*) FROM candles c JOIN contracts k USING (partition_key, "
        "expired_instrument_key) WHERE partition_key = ? AND instrument_type != 'FUT'",
        [key],
    )[0]
    (greeks,) = p.query("SELECT count(*) FROM option_greeks WHERE partition_key = ?", [key])[0]
    assert greeks == options  # one row per option per traded minute


def test_iv_check_counts_what_the_table_holds(researched) -> None:
    p, key, result = researched
    (evaluation,) = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "iv_within_bounds"
    ]
    (with_iv, outside) = p.query(
        "SELECT count(iv), count(*) FILTER (WHERE iv < 0.01 OR iv > 5.0) FROM option_greeks "
        "WHERE partition_key = ?",
        [key],
    )[0]
    assert evaluation.metadata["rows_with_iv"].value == with_iv > 0
    assert evaluation.metadata["rows_out_of_bounds"].value == outside
    assert evaluation.passed == (outside == 0)


def test_chain_metrics_match_the_one_minute_definitions(researched, option_candles) -> None:
    p, key, _ = researched
    metrics = p.query_frame(
        "SELECT * FROM chain_metrics WHERE partition_key = ? ORDER BY as_of", [key]
    )
    strikes = option_candles["strike"].unique()
    for row in metrics.iloc[:: max(len(metrics) // 12, 1)].itertuples():
        at = row.as_of.tz_convert("Asia/Kolkata")
        chain = chain_asof(option_candles, at)
        tau = float(years_to_expiry(pd.Series([at]), AUGUST)[0])
        forward = synthetic_forward(chain, RATE, tau, MAX_AGE)
        assert _same(row.forward, forward, 1e-9), at
        assert _same(row.atm_strike, atm_strike(strikes, forward)), at
        ratios = pcr(chain)
        assert _same(row.pcr_oi, ratios["pcr_oi"], 1e-12), at
        assert _same(row.pcr_volume, ratios["pcr_volume"], 1e-12), at
        assert _same(row.max_pain, max_pain(chain)), at
        calls = chain[chain["option_type"] == "CE"]
        assert row.ce_oi == int(calls["oi"].fillna(0).sum())
        atm = chain[(chain["strike"] == row.atm_strike) & (chain["age_minutes"] <= MAX_AGE)]
        legs = dict(zip(atm["option_type"], atm["close"], strict=True))
        assert _same(row.atm_ce, legs.get("CE", math.nan)), at
        assert _same(row.atm_pe, legs.get("PE", math.nan)), at


def test_option_greeks_use_the_forward_of_their_own_minute(researched, option_candles) -> None:
    p, key, _ = researched
    greeks = p.query_frame(
        'SELECT * FROM option_greeks WHERE partition_key = ? ORDER BY "timestamp", '
        "expired_instrument_key",
        [key],
    )
    sample = greeks.iloc[:: max(len(greeks) // 15, 1)]
    for row in sample.itertuples():
        at = row.timestamp.tz_convert("Asia/Kolkata")
        chain = chain_asof(option_candles, at)
        tau = float(years_to_expiry(pd.Series([at]), AUGUST)[0])
        forward = synthetic_forward(chain, RATE, tau, MAX_AGE)
        assert _same(row.forward, forward, 1e-9), at
        is_call = row.instrument_type == "CE"
        iv = black76.implied_vol(row.close, is_call, forward, row.strike_price, tau, RATE)
        assert _same(row.iv, float(iv), 1e-9), at
        if math.isfinite(row.iv):
            delta = black76.greeks(is_call, forward, row.strike_price, tau, RATE, row.iv)
            assert row.delta == pytest.approx(float(delta["delta"].iloc[0]), abs=1e-12)
    defined = greeks.dropna(subset=["iv"])
    assert len(defined) > 0.9 * len(greeks)  # a liquid index: nearly every minute has a forward
    assert ((defined["instrument_type"] == "CE") == (defined["delta"] > 0)).all()
    assert (defined["gamma"] > 0).all() and (defined["vega"] > 0).all()


def test_option_chain_daily_is_the_session_of_each_contract(researched) -> None:
    p, key, _ = researched
    daily = p.query_frame(
        "SELECT * FROM option_chain_daily WHERE partition_key = ? "
        "ORDER BY expired_instrument_key, session_date",
        [key],
    )
    by_sql = p.query_frame(
        """SELECT expired_instrument_key, CAST(timezone('Asia/Kolkata', "timestamp") AS DATE)
                  AS session_date,
                  arg_min(open, "timestamp") AS open, max(high) AS high, min(low) AS low,
                  arg_max(close, "timestamp") AS close, sum(volume)::BIGINT AS volume,
                  arg_max(open_interest, "timestamp") AS open_interest,
                  max("timestamp") AS close_time
           FROM candles WHERE partition_key = ? GROUP BY ALL
           ORDER BY expired_instrument_key, session_date""",
        [key],
    )
    columns = ["open", "high", "low", "close", "volume", "open_interest", "close_time"]
    assert len(daily) == len(by_sql)
    pd.testing.assert_frame_equal(
        daily[columns].reset_index(drop=True), by_sql[columns], check_dtype=False
    )
    previous = daily.groupby("expired_instrument_key")["open_interest"].shift()
    assert daily["oi_change"].astype("float").equals(daily["open_interest"] - previous)
    assert daily.loc[previous.isna(), "build_up"].isna().all()
    up = daily["close"] > daily.groupby("expired_instrument_key")["close"].shift()
    longs = daily[up & (daily["oi_change"] > 0)]
    assert (longs["build_up"] == "long_build_up").all() and len(longs) > 0
    futures = daily[daily["instrument_type"] == "FUT"]
    assert len(futures) > 0 and futures["iv"].isna().all()
    greeks = p.query_frame(
        'SELECT expired_instrument_key, "timestamp" AS close_time, iv, delta FROM option_greeks '
        "WHERE partition_key = ?",
        [key],
    )
    options = daily[daily["instrument_type"] != "FUT"].merge(
        greeks, on=["expired_instrument_key", "close_time"], suffixes=("", "_minute")
    )
    assert len(options) == (daily["instrument_type"] != "FUT").sum()
    assert np.allclose(options["iv"], options["iv_minute"], equal_nan=True)


def test_a_second_run_replaces_the_partition_rows(researched) -> None:
    p, key, _ = researched
    before = p.query("SELECT count(*) FROM option_greeks WHERE partition_key = ?", [key])
    result = run(p, key, selection=[chain_research], research=ResearchSettings(bucket_minutes=75))
    assert result.success
    assert p.query("SELECT count(*) FROM option_greeks WHERE partition_key = ?", [key]) == before
    per_session = p.query(
        "SELECT count(*) FROM chain_metrics WHERE partition_key = ? GROUP BY session_date", [key]
    )
    assert {n for (n,) in per_session} == {5}  # 375 minutes in buckets of 75


def _same(stored: float, expected: float, tolerance: float = 0.0) -> bool:
    if stored is None or (isinstance(stored, float) and math.isnan(stored)):
        return math.isnan(expected)
    return abs(float(stored) - float(expected)) <= tolerance * max(1.0, abs(float(expected)))
