"""The research API on a collected sandbox partition: IV recovered against the sandbox's own
smile, as-of values against plain SQL, the OI tracker, candles, and the errors."""

from __future__ import annotations

import math
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from expirytrack_dagster import research
from expirytrack_dagster.research import api
from expirytrack_dagster.sandbox.paths import POINTS_PER_MINUTE
from expirytrack_dagster.sandbox.pricing import smile_iv
from expirytrack_dagster.storage.database import connect
from expirytrack_dagster_tests.research.conftest import EXPIRY, Collected
from expirytrack_dagster_tests.research.frames import ist

IV_TOLERANCE = 2e-4
"""0.02 vol points, for legs that traded in the minute asked and have vega >= 5 rupees per point.
The sandbox prices by Black-76 on its forward with its smile, then rounds to the 0.05 tick:
half a tick moves IV by at most 0.025 / (100 × 5) = 5e-5. The synthetic forward (legs of the
same minute, so the same sandbox forward) is off by at most e^{rT} × 0.05 from the two legs'
rounding: × |delta| <= 1 / vega (>= 500 per unit vol) gives <= 1e-4. The sandbox's normal CDF is
an approximation (error 1.5e-7, × forward ≈ 0.004 rupees): <= 1e-5. The sandbox prices the close
10 s before the minute's end, where we measure time to expiry: negligible. Sum < 2e-4."""
MIN_VEGA = 5.0


def truth_smile(collected: Collected, at: pd.Timestamp, strikes: np.ndarray) -> tuple:
    """The sandbox's forward and smile IV at the point that priced minute ``at``'s close."""
    market = collected.market
    slot = market.book.slot("NIFTY")
    forward, tau = market._forward_points(slot, EXPIRY, at.date())
    atm_iv = market._atm_iv(slot, at.date())
    minute = int((at - at.replace(hour=9, minute=15)).total_seconds() // 60)
    point = minute * POINTS_PER_MINUTE + POINTS_PER_MINUTE - 1
    return forward[point], smile_iv(strikes, forward[point], tau[point], atm_iv)


@pytest.mark.parametrize("at", ["2025-08-14 10:30", "2025-08-01 09:20", "2025-08-21 13:00"])
def test_iv_recovered_from_sandbox_prices_matches_the_sandbox_smile(
    collected: Collected, at: str
) -> None:
    chain = research.option_chain(
        "NIFTY", EXPIRY, at, database=collected.database, max_age_minutes=0
    )
    true_forward, _ = truth_smile(collected, ist(at), chain["strike"].to_numpy())
    assert abs(chain.attrs["forward"] - true_forward) <= 0.06
    checked = 0
    for side in ("CE", "PE"):
        legs = chain[(chain[f"{side}_age_minutes"] == 0) & (chain[f"{side}_vega"] >= MIN_VEGA)]
        _, truth = truth_smile(collected, ist(at), legs["strike"].to_numpy())
        error = np.abs(legs[f"{side}_iv"].to_numpy() - truth)
        assert (error <= IV_TOLERANCE).all(), (side, legs["strike"].tolist(), error)
        checked += len(legs)
    assert checked >= 6  # both legs of the liquid strikes near the money


def test_chain_values_match_plain_sql(collected: Collected) -> None:
    at = "2025-08-14 10:30"
    chain = api.option_chain("NIFTY", EXPIRY, at, database=collected.database)
    with connect(collected.database, read_only=True) as db:
        rows = db.execute(
            """
            WITH today AS (
                SELECT c.strike_price AS strike, c.instrument_type AS side,
                       arg_max(k.close, k.timestamp) AS ltp, max(k.timestamp) AS last,
                       sum(k.volume) AS volume, arg_max(k.open_interest, k.timestamp) AS oi
                FROM candles k JOIN contracts c USING (partition_key, expired_instrument_key)
                WHERE k.timestamp BETWEEN '2025-08-14 09:15+05:30' AND '2025-08-14 10:30+05:30'
                  AND c.instrument_type IN ('CE', 'PE')
                GROUP BY ALL),
            yesterday AS (
                SELECT c.strike_price AS strike, c.instrument_type AS side,
                       arg_max(k.open_interest, k.timestamp) AS prev_oi
                FROM candles k JOIN contracts c USING (partition_key, expired_instrument_key)
                WHERE k.timestamp >= '2025-08-13 09:15+05:30'
                  AND k.timestamp < '2025-08-13 15:30+05:30'
                GROUP BY ALL)
            SELECT * FROM today LEFT JOIN yesterday USING (strike, side)
            """
        ).fetchdf()
    assert len(rows) > 0
    by_strike = chain.set_index("strike")
    for row in rows.itertuples():
        got = by_strike.loc[row.strike]
        assert got[f"{row.side}_ltp"] == row.ltp
        expected_age = (ist(at) - pd.Timestamp(row.last).tz_convert("Asia/Kolkata")).seconds // 60
        assert got[f"{row.side}_age_minutes"] == expected_age
        assert got[f"{row.side}_session_volume"] == row.volume
        assert got[f"{row.side}_oi"] == row.oi
        assert got[f"{row.side}_oi_change"] == row.oi - row.prev_oi
    options = rows.rename(columns={"side": "option_type", "volume": "session_volume"})
    assert chain.attrs["pcr_oi"] == pytest.approx(
        options.loc[options.option_type == "PE", "oi"].sum()
        / options.loc[options.option_type == "CE", "oi"].sum()
    )
    assert chain.attrs["max_pain"] in set(chain["strike"])
    assert chain["is_atm"].sum() == 1
    atm = chain.loc[chain["is_atm"], "strike"].item()
    assert atm == chain.attrs["atm_strike"]
    assert all(abs(atm - chain.attrs["forward"]) <= abs(k - chain.attrs["forward"])
               for k in chain["strike"])  # fmt: skip
    future = _future_close(collected.database, at)
    assert chain.attrs["future_price"] == future
    assert math.isnan(chain.attrs["spot"])  # no index candles collected


def _future_close(database: Path, at: str) -> float:
    with connect(database, read_only=True) as db:
        return db.execute(
            """
            SELECT arg_max(close, timestamp) FROM candles k JOIN contracts c
              USING (partition_key, expired_instrument_key)
            WHERE c.instrument_type = 'FUT' AND k.timestamp >= '2025-08-14 09:15+05:30'
              AND k.timestamp <= ?::TIMESTAMPTZ
            """,
            [f"{at}+05:30"],
        ).fetchone()[0]


def test_stale_legs_get_no_iv(collected: Collected) -> None:
    # Early on expiry day the far strikes trade rarely: legs older than max_age have no IV.
    chain = api.option_chain("NIFTY", EXPIRY, "2025-08-14 09:17", database=collected.database)
    for side in ("CE", "PE"):
        stale = chain[f"{side}_age_minutes"] > 5
        untraded = chain[f"{side}_ltp"].isna()
        assert chain.loc[stale | untraded, [f"{side}_iv", f"{side}_delta"]].isna().all().all()
        fresh = chain[f"{side}_age_minutes"] <= 5
        assert chain.loc[fresh & (chain[f"{side}_vega"] > MIN_VEGA), f"{side}_iv"].notna().all()
    tight = api.option_chain(
        "NIFTY", EXPIRY, "2025-08-14 10:30", database=collected.database, max_age_minutes=0
    )
    old = tight["CE_age_minutes"] > 0
    assert old.any() and tight.loc[old, "CE_iv"].isna().all()


def test_spot_comes_from_index_candles_when_collected(collected: Collected, tmp_path: Path) -> None:
    copy = tmp_path / "with_index.duckdb"
    shutil.copyfile(collected.database, copy)
    with connect(copy) as db:
        db.execute(
            """
            INSERT INTO index_candles VALUES
              ('NIFTY_2025-08-28', 'NSE_INDEX|Nifty 50', '2025-08-14 10:29+05:30', 1, 1, 1, 26100.5, 0),
              ('NIFTY_2025-08-28', 'NSE_INDEX|Nifty 50', '2025-08-14 10:31+05:30', 1, 1, 1, 26200.0, 0),
              ('NIFTY_2025-08-28', 'NSE_INDEX|Nifty 50', '2025-08-13 15:29+05:30', 1, 1, 1, 26000.0, 0)
            """
        )
    chain = api.option_chain("NIFTY", EXPIRY, "2025-08-14 10:30", database=copy)
    assert chain.attrs["spot"] == 26100.5
    early = api.option_chain("NIFTY", EXPIRY, "2025-08-14 09:20", database=copy)
    assert math.isnan(early.attrs["spot"])  # yesterday's close is not carried


def test_oi_tracker_around_the_money(collected: Collected) -> None:
    at = "2025-08-14 10:30"
    tracker = research.oi_tracker("NIFTY", EXPIRY, at, database=collected.database)
    chain = api.option_chain("NIFTY", EXPIRY, at, database=collected.database)
    strikes = sorted(tracker["strike"].unique())
    atm = chain.attrs["atm_strike"]
    listed = sorted(chain["strike"])
    i = listed.index(atm)
    assert strikes == listed[max(0, i - 3) : i + 4]
    assert set(tracker.loc[tracker["is_atm"], "strike"]) == {atm}
    with connect(collected.database, read_only=True) as db:
        then = dict(
            db.execute(
                """
                SELECT expired_instrument_key, arg_max(open_interest, timestamp) FROM candles
                WHERE timestamp BETWEEN '2025-08-14 09:15+05:30' AND '2025-08-14 10:15+05:30'
                GROUP BY 1
                """
            ).fetchall()
        )
    for row in tracker.itertuples():
        assert row.oi_chg_15m == row.oi - then[row.expired_instrument_key]
        assert row.oi_chg_pct_15m == pytest.approx(
            100 * row.oi_chg_15m / then[row.expired_instrument_key]
        )
    by_key = chain.melt(id_vars="strike", value_vars=["CE_oi", "PE_oi"])
    assert sorted(tracker["oi"]) == sorted(by_key[by_key["strike"].isin(strikes)]["value"])


def test_oi_tracker_lists_a_contract_that_has_not_traded_in_the_session(
    collected: Collected, tmp_path: Path
) -> None:
    at = "2025-08-14 10:30"
    whole = research.oi_tracker("NIFTY", EXPIRY, at, database=collected.database)
    quiet = whole[~whole["is_atm"]].iloc[0]  # a wing leg: the forward and ATM stay the same
    copy = tmp_path / "quiet.duckdb"
    shutil.copyfile(collected.database, copy)
    with connect(copy) as db:
        db.execute(
            """DELETE FROM candles WHERE expired_instrument_key = ?
               AND "timestamp" >= '2025-08-14 09:15+05:30'""",
            [quiet.expired_instrument_key],
        )
    tracker = research.oi_tracker("NIFTY", EXPIRY, at, database=copy)
    assert list(tracker["expired_instrument_key"]) == list(whole["expired_instrument_key"])
    row = tracker[tracker["expired_instrument_key"] == quiet.expired_instrument_key].iloc[0]
    assert math.isnan(row["oi"]) and math.isnan(row["oi_chg_3m"])  # listed, never carried
    others = tracker["expired_instrument_key"] != quiet.expired_instrument_key
    pd.testing.assert_frame_equal(
        tracker[others].reset_index(drop=True), whole[others].reset_index(drop=True)
    )


def test_max_pain_and_pcr_functions_agree_with_the_chain(collected: Collected) -> None:
    at = "2025-08-20 11:00"
    chain = api.option_chain("NIFTY", EXPIRY, at, database=collected.database)
    assert (
        research.max_pain("NIFTY", EXPIRY, at, database=collected.database)
        == chain.attrs["max_pain"]
    )
    ratios = research.pcr("NIFTY", EXPIRY, at, database=collected.database)
    assert ratios == {"pcr_oi": chain.attrs["pcr_oi"], "pcr_volume": chain.attrs["pcr_volume"]}


def test_candles_by_key_or_trading_symbol_resampled(collected: Collected) -> None:
    with connect(collected.database, read_only=True) as db:
        key, symbol = db.execute(
            "SELECT expired_instrument_key, trading_symbol FROM contracts "
            "WHERE instrument_type = 'FUT'"
        ).fetchone()
        sql_bars = db.execute(
            """
            SELECT time_bucket(INTERVAL 15 MINUTE, timestamp, TIMESTAMPTZ '2025-08-14 09:15+05:30')
                     AS bar, first(open ORDER BY timestamp), max(high), min(low),
                   last(close ORDER BY timestamp), sum(volume), last(open_interest ORDER BY timestamp)
            FROM candles WHERE expired_instrument_key = ? AND timestamp::DATE = '2025-08-14'
            GROUP BY 1 ORDER BY 1
            """,
            [key],
        ).fetchall()
    bars = research.candles(
        symbol.lower(), "15minute", date(2025, 8, 14), "2025-08-14", database=collected.database
    )
    assert bars.attrs["expired_instrument_key"] == key
    assert len(bars) == len(sql_bars) == 25  # 09:15-15:29 in 15-minute bars
    for got, want in zip(bars.itertuples(index=False), sql_bars, strict=True):
        assert got.timestamp == want[0]
        assert (got.open, got.high, got.low, got.close, got.volume, got.open_interest) == want[1:]
    days = research.candles(key, "day", "2025-08-11", "2025-08-14", database=collected.database)
    assert [t.date() for t in days["timestamp"]] == [date(2025, 8, d) for d in (11, 12, 13, 14)]
    assert str(days["timestamp"].dt.tz) == "Asia/Kolkata"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda db: api.option_chain("NIFTY", "2025-08-21", "2025-08-14 10:30", database=db),
         "partition NIFTY_2025-08-21 is not collected.*expirytrack backfill NIFTY"),
        (lambda db: api.option_chain("NIFTY", EXPIRY, "2025-08-15 10:30", database=db),
         "not a trading day"),
        (lambda db: api.option_chain("NIFTY", EXPIRY, "2025-08-14 16:00", database=db),
         "outside the session"),
        (lambda db: api.option_chain("NIFTY", EXPIRY, "2025-08-29 10:00", database=db),
         "after the expiry"),
        (lambda db: api.oi_tracker("NIFTY", EXPIRY, "yesterday noon", database=db),
         "not a time"),
        (lambda db: api.candles("NIFTY 99999 CE", database=db), "unknown contract"),
        (lambda db: api.candles("NIFTY", "2minute", database=db), "not one of"),
        (lambda db: api.option_chain("NIFTY", EXPIRY, "2025-08-14 10:30",
                                     database=Path(db).with_name("absent.duckdb")),
         "no database at"),
    ],
)  # fmt: skip
def test_clear_errors(collected: Collected, call, message: str) -> None:
    with pytest.raises(api.ResearchError, match=message) as caught:
        call(collected.database)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_an_open_connection_serves_many_questions(collected: Collected) -> None:
    by_path = api.option_chain("NIFTY", EXPIRY, "2025-08-14 10:30", database=collected.database)
    connection = research.open_database(collected.database)
    try:
        for _ in range(2):  # left open by each call
            by_connection = research.option_chain(
                "NIFTY", EXPIRY, "2025-08-14 10:30", database=connection
            )
            pd.testing.assert_frame_equal(by_connection, by_path)
        assert (
            research.max_pain("NIFTY", EXPIRY, "2025-08-14 10:30", database=connection)
            == (by_path.attrs["max_pain"])
        )
    finally:
        connection.close()


def test_no_spot_from_a_database_without_index_candles(
    collected: Collected, tmp_path: Path
) -> None:
    copy = tmp_path / "older.duckdb"
    shutil.copyfile(collected.database, copy)
    with connect(copy) as db:
        db.execute("DROP TABLE index_candles")  # as a database made before they were collected
    chain = api.option_chain("NIFTY", EXPIRY, "2025-08-14 10:30", database=copy)
    assert math.isnan(chain.attrs["spot"]) and math.isfinite(chain.attrs["forward"])
