"""The synthetic market on its own: calendars per era, contract lists, candle realism, determinism."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from expirytrack_dagster.calendar import IST, is_trading_day, session_for
from expirytrack_dagster.sandbox import SyntheticMarket, UnknownInstrument, generic_profile
from expirytrack_dagster.sandbox.contracts import ContractSpec
from expirytrack_dagster.sandbox.day_texts import DAY_TEXTS
from expirytrack_dagster.sandbox.expiries import expiry_calendar
from expirytrack_dagster.sandbox.profiles import (
    DEFAULT_PROFILES,
    UnderlyingProfile,
    build_book,
)
from expirytrack_dagster_tests.conftest import load_sample
from expirytrack_dagster_tests.sandbox.conftest import TODAY

INDEXES = ("NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "NIFTYNXT50", "SENSEX", "BANKEX")
TUE, WED, THU, FRI = 1, 2, 3, 4


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return SyntheticMarket(seed=7, today=TODAY)


def _calendar(symbol: str) -> list[date]:
    profile = next(p for p in DEFAULT_PROFILES if p.symbol == symbol)
    return expiry_calendar(profile).between(date(2024, 1, 1), date(2026, 12, 31))


def test_default_underlyings_and_keys() -> None:
    keys = {p.symbol: p.instrument_key for p in DEFAULT_PROFILES}
    assert keys == {
        "NIFTY": "NSE_INDEX|Nifty 50",
        "BANKNIFTY": "NSE_INDEX|Nifty Bank",
        "FINNIFTY": "NSE_INDEX|Nifty Fin Service",
        "MIDCPNIFTY": "NSE_INDEX|NIFTY MID SELECT",
        "NIFTYNXT50": "NSE_INDEX|Nifty Next 50",
        "SENSEX": "BSE_INDEX|SENSEX",
        "BANKEX": "BSE_INDEX|BANKEX",
        "RELIANCE": "NSE_EQ|INE002A01018",
    }
    steps = {p.symbol: p.strike_step for p in DEFAULT_PROFILES}
    assert [steps[s] for s in INDEXES] == [50, 100, 50, 25, 100, 100, 100]


def test_nifty_calendar_reproduces_the_recorded_expiry_list() -> None:
    recorded = load_sample("expiries_NSE_INDEX-Nifty50.json")["data"]
    first, last = date.fromisoformat(recorded[0]), date.fromisoformat(recorded[-1])
    market = SyntheticMarket(seed=1, today=last, history_days=(last - first).days)
    assert [d.isoformat() for d in market.expiries("NIFTY")] == recorded


def test_expiry_eras_follow_the_exchange_calendar_changes() -> None:
    nifty = _calendar("NIFTY")
    weekly_days = Counter(d.weekday() for d in nifty if d < date(2025, 8, 29))
    assert weekly_days.most_common(1)[0][0] == THU
    assert all(
        d.weekday() in (TUE, date(2025, 10, 20).weekday()) for d in nifty if d > date(2025, 9, 1)
    )
    assert date(2025, 9, 2) in nifty and date(2025, 8, 28) in nifty
    assert date(2025, 4, 9) in nifty  # Thursday 10 April 2025 was a holiday
    assert date(2025, 10, 20) in nifty  # Tuesday 21 Oct 2025 only had the Muhurat session

    for symbol, last_weekly in (
        ("BANKNIFTY", date(2024, 11, 13)),
        ("FINNIFTY", date(2024, 11, 19)),
        ("MIDCPNIFTY", date(2024, 11, 18)),
        ("BANKEX", date(2024, 11, 18)),
    ):
        dates = _calendar(symbol)
        assert last_weekly in dates
        later = [d for d in dates if d > last_weekly]
        assert len({(d.year, d.month) for d in later}) == len(later), f"{symbol}: monthly only"
    for symbol in ("BANKNIFTY", "NIFTYNXT50"):
        dates = _calendar(symbol)
        assert {d.weekday() for d in dates if date(2025, 1, 1) <= d <= date(2025, 8, 31)} <= {
            THU,
            WED,
        }
        assert {d.weekday() for d in dates if d >= date(2025, 9, 1)} <= {
            TUE,
            date(2025, 10, 20).weekday(),
        }

    sensex = _calendar("SENSEX")
    assert Counter(d.weekday() for d in sensex if d.year == 2024).most_common(1)[0][0] == FRI
    assert (
        Counter(
            d.weekday() for d in sensex if date(2025, 1, 1) <= d < date(2025, 9, 1)
        ).most_common(1)[0][0]
        == TUE
    )
    assert min(d for d in sensex if d >= date(2025, 9, 1)) == date(2025, 9, 4)
    assert Counter(d.weekday() for d in sensex if d >= date(2025, 9, 1)).most_common(1)[0][0] == THU


def test_every_expiry_is_a_regular_trading_day() -> None:
    for profile in DEFAULT_PROFILES:
        for d in expiry_calendar(profile).between(date(2023, 1, 1), date(2026, 12, 31)):
            session = session_for(d)
            assert session is not None and session.kind == "regular", (profile.symbol, d)


def test_listed_expiries_window(market: SyntheticMarket) -> None:
    for symbol in (*INDEXES, "RELIANCE"):
        listed = market.expiries(symbol)
        assert listed == sorted(listed) and listed
        assert TODAY - timedelta(days=365) <= listed[0] and listed[-1] <= TODAY
    assert market.expiries("NSE_INDEX|Nifty 50") == market.expiries("NIFTY")
    with pytest.raises(UnknownInstrument):
        market.expiries("NSE_INDEX|Nifty 51")


def test_contract_lists_are_plausible(market: SyntheticMarket) -> None:
    for symbol in INDEXES:
        for expiry in market.expiries(symbol)[-6:]:
            options = market.option_contracts(symbol, expiry)
            futures = market.future_contracts(symbol, expiry)
            monthly = market.is_monthly(symbol, expiry)
            assert 100 <= len(options) <= 240, (symbol, expiry, len(options))
            assert len(futures) == (1 if monthly else 0)
            assert {o["weekly"] for o in options} == {not monthly}
            strikes = sorted({o["strike_price"] for o in options})
            step = market.profile(symbol).strike_step
            assert all(b - a == step for a, b in itertools.pairwise(strikes))
            spot = market.path(market.profile(symbol)).close(expiry)
            assert strikes[0] < spot < strikes[-1]
    reliance = market.option_contracts("RELIANCE", market.expiries("RELIANCE")[-1])
    assert (
        reliance[0]["underlying_type"] == "EQUITY"
        and reliance[0]["underlying_key"] == "NSE_EQ|INE002A01018"
    )


def test_tokens_are_unique_within_an_expiry_date_across_underlyings(
    market: SyntheticMarket,
) -> None:
    day = date(2025, 8, 28)
    keys = [
        c["instrument_key"]
        for symbol in (*INDEXES, "RELIANCE")
        if day in market.expiries(symbol)
        for c in market.contracts(symbol, day)
    ]
    assert len(keys) > 400 and len(keys) == len(set(keys))
    for key in keys[:50]:
        assert market.contract(key).expired_key == key


def _specs(
    market: SyntheticMarket, symbol: str, expiry: date
) -> tuple[list[ContractSpec], ContractSpec | None]:
    found = market.expiry_contracts(symbol, expiry)
    assert found is not None
    return list(found.options), (found.futures[0] if found.futures else None)


def _check_rows(rows: list[list], spec: ContractSpec, today: date) -> None:
    stamps = [r[0] for r in rows]
    assert stamps == sorted(stamps, reverse=True) and len(set(stamps)) == len(stamps)
    assert all(ts.endswith("+05:30") for ts in stamps)
    frame = pd.DataFrame(rows, columns=["ts", "o", "h", "l", "c", "v", "oi"])
    moments = pd.to_datetime(frame["ts"], format="ISO8601")
    for day, moments_of_day in moments.groupby(moments.dt.date):
        session = session_for(day)
        assert session is not None and is_trading_day(day)
        assert spec.listing <= day <= min(spec.expiry, today)
        assert session.open <= moments_of_day.min() and moments_of_day.max() < session.close
    o, h, lo, c = (frame[col].to_numpy(dtype=float) for col in "ohlc")
    assert (h >= np.maximum(o, c)).all() and (lo <= np.minimum(o, c)).all() and (lo > 0).all()
    paise = np.rint(np.concatenate([o, h, lo, c]) * 100).astype(np.int64)
    assert (paise % spec.tick_paise == 0).all()
    lot = spec.profile.lot_size
    assert (frame["v"] > 0).all() and (frame["v"] % lot == 0).all()
    assert (frame["oi"] >= 0).all() and (frame["oi"] % lot == 0).all()


def test_candles_are_consistent_and_inside_sessions(market: SyntheticMarket) -> None:
    options, future = _specs(market, "NIFTY", date(2025, 8, 28))
    assert future is not None
    chosen = [future, *options[:: max(1, len(options) // 8)]]
    for spec in chosen:
        rows = market.candle_rows(spec, "1minute", spec.listing, spec.expiry)
        _check_rows(rows, spec, TODAY)


def test_futures_trade_every_minute_of_every_session(market: SyntheticMarket) -> None:
    _, future = _specs(market, "NIFTY", date(2025, 8, 28))
    assert future is not None
    frame = market.candles(future.expired_key, "1minute", date(2025, 7, 28), date(2025, 8, 28))
    per_day = frame.groupby(frame["timestamp"].dt.date).size()
    sessions = [d for d in pd.date_range("2025-07-28", "2025-08-28").date if is_trading_day(d)]
    assert (per_day == 375).all() and list(per_day.index) == sessions
    assert frame["timestamp"].dt.strftime("%H:%M").iloc[[0, -1]].tolist() == ["09:15", "15:29"]


def test_special_sessions_have_their_own_hours(market: SyntheticMarket) -> None:
    old = SyntheticMarket(seed=7, today=date(2024, 12, 31))
    _, future = _specs(old, "NIFTY", date(2024, 11, 28))
    assert future is not None
    muhurat = old.candles(future.expired_key, "1minute", date(2024, 11, 1), date(2024, 11, 1))
    assert len(muhurat) == 60
    assert muhurat["timestamp"].dt.strftime("%H:%M").iloc[[0, -1]].tolist() == ["18:00", "18:59"]
    early = SyntheticMarket(seed=7, today=date(2024, 3, 31))
    _, march = _specs(early, "NIFTY", date(2024, 2, 29))
    assert march is not None
    saturday = early.candles(march.expired_key, "1minute", date(2024, 1, 20), date(2024, 1, 20))
    assert len(saturday) == 195  # 09:15-12:30


def test_far_strikes_trade_sparsely_and_some_never(market: SyntheticMarket) -> None:
    options, future = _specs(market, "NIFTY", date(2025, 8, 28))
    assert future is not None
    spot = market.path(future.profile).previous_close(options[0].listing)
    by_distance = sorted(options, key=lambda c: abs((c.strike or 0) - spot))
    atm, far = by_distance[0], by_distance[-1]
    start, end = atm.listing, atm.expiry
    atm_rows = market.candle_rows(atm, "1minute", start, end)
    far_rows = market.candle_rows(far, "1minute", start, end)
    trading = {d for d in pd.date_range(start, end).date if is_trading_day(d)}
    assert len(far_rows) < len(atm_rows) / 3
    assert len({r[0][:10] for r in far_rows}) < len(trading)  # whole days without a trade
    never = [c for c in options if c.dead]
    assert 0 < len(never) < len(options) / 10
    assert market.candle_rows(never[0], "day", start, end) == []


def test_volume_and_open_interest_grow_into_expiry(market: SyntheticMarket) -> None:
    _options, future = _specs(market, "NIFTY", date(2025, 8, 28))
    assert future is not None
    day = market.candles(future.expired_key, "day", future.listing, future.expiry)
    first_month, last_month = day.iloc[:20], day.iloc[-20:]
    assert last_month["volume"].mean() > 2 * first_month["volume"].mean()
    assert last_month["open_interest"].max() > 3 * first_month["open_interest"].mean()


def test_option_prices_follow_the_market(market: SyntheticMarket) -> None:
    options, future = _specs(market, "NIFTY", date(2025, 8, 28))
    assert future is not None
    last_day = date(2025, 8, 28)
    settle = market.candles(future.expired_key, "1minute", last_day, last_day)["close"].iloc[-1]
    for spec in options:
        rows = market.candle_rows(spec, "1minute", last_day, last_day)
        if not rows or not rows[0][0].endswith("15:29:00+05:30"):
            continue
        intrinsic = max(
            0.0, (settle - spec.strike) if spec.instrument_type == "CE" else (spec.strike - settle)
        )
        assert abs(rows[0][4] - max(intrinsic, 0.05)) < 0.01 * settle, spec.trading_symbol()


def test_same_seed_same_candles_whatever_the_order_and_windows() -> None:
    one = SyntheticMarket(seed=42, today=TODAY)
    other = SyntheticMarket(seed=42, today=TODAY)
    _, future = _specs(one, "BANKNIFTY", date(2025, 8, 28))
    assert future is not None
    key, start = future.expired_key, date(2025, 7, 29)
    days = [start + timedelta(days=i) for i in range(30)]
    # The other market is asked day by day, newest first, before ever seeing the whole window.
    pieces = [other.candle_rows(key, "1minute", d, d) for d in reversed(days)]
    DAY_TEXTS.clear()  # markets of one seed share rendered days: make ``one`` render its own
    whole = one.candle_rows(key, "1minute", days[0], days[-1])
    assert whole == [row for piece in pieces for row in piece]
    assert len(whole) >= 20 * 375
    five = one.candle_rows(key, "5minute", days[0], days[-1])
    DAY_TEXTS.clear()
    assert five == other.candle_rows(key, "5minute", days[0], days[-1])
    reseeded = SyntheticMarket(seed=43, today=TODAY)
    assert reseeded.candle_rows(key, "1minute", days[0], days[0]) != whole[-375:]


def test_markets_of_one_seed_share_rendered_days_and_other_seeds_do_not() -> None:
    first = SyntheticMarket(seed=44, today=TODAY)
    _, future = _specs(first, "NIFTY", date(2025, 8, 28))
    assert future is not None
    days = (date(2025, 8, 18), date(2025, 8, 22))
    DAY_TEXTS.clear()
    served = first.candle_rows(future.expired_key, "1minute", *days)
    rendered = len(DAY_TEXTS)
    assert rendered == 5  # one text per session
    again = SyntheticMarket(seed=44, today=date(2025, 9, 1))  # another day's market: same days
    assert again.candle_rows(future.expired_key, "1minute", *days) == served
    assert len(DAY_TEXTS) == rendered  # served from what the first market rendered
    other = SyntheticMarket(seed=45, today=TODAY)
    assert other.candle_rows(future.expired_key, "1minute", *days) != served
    assert len(DAY_TEXTS) == 2 * rendered


@pytest.mark.parametrize("interval", ["3minute", "5minute", "15minute", "30minute", "day"])
def test_longer_intervals_aggregate_the_minutes(market: SyntheticMarket, interval: str) -> None:
    options, _ = _specs(market, "NIFTY", date(2025, 8, 28))
    spec = options[len(options) // 3]  # an out-of-the-money put: gaps inside buckets
    start, end = date(2025, 8, 18), date(2025, 8, 22)
    minutes = market.candles(spec.expired_key, "1minute", start, end)
    bars = market.candles(spec.expired_key, interval, start, end)
    local = minutes["timestamp"].dt.tz_convert(IST)
    if interval == "day":
        bucket = local.dt.normalize()
    else:
        size = int(interval.removesuffix("minute"))
        since_open = (local.dt.hour * 60 + local.dt.minute) - (9 * 60 + 15)
        bucket = local.dt.normalize() + pd.to_timedelta(
            9 * 60 + 15 + since_open // size * size, unit="min"
        )
    expected = minutes.groupby(bucket.rename(None)).agg(
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        volume=("volume", "sum"),
        open_interest=("open_interest", "last"),
    )
    assert bars["timestamp"].tolist() == list(expected.index)
    for column in expected.columns:
        assert np.allclose(bars[column].to_numpy(), expected[column].to_numpy()), column


def test_candles_never_pass_today() -> None:
    market = SyntheticMarket(seed=7, today=TODAY)
    _, future = _specs(market, "NIFTY", date(2025, 8, 28))
    assert future is not None
    market.set_today(date(2025, 8, 20))
    with pytest.raises(UnknownInstrument):  # not expired yet on that day
        market.candles(future.expired_key, "day", date(2025, 8, 1), date(2025, 8, 28))
    assert date(2025, 8, 28) not in market.expiries("NIFTY")
    market.set_today(date(2025, 8, 28))
    frame = market.candles(future.expired_key, "day", date(2025, 8, 1), date(2025, 9, 5))
    assert frame["timestamp"].dt.date.max() == date(2025, 8, 28)


def test_user_added_underlyings_work() -> None:
    tcs = generic_profile("TCS", "NSE_EQ|INE467B01029")
    mapped = UnderlyingProfile.from_mapping(
        {
            "symbol": "MYIDX",
            "instrument_key": "NSE_INDEX|My Index",
            "level": 20000,
            "strike_step": 50,
            "eras": [{"weekly": "WED", "monthly": "WED"}],
        }
    )
    market = SyntheticMarket(build_book((tcs, mapped)), seed=7, today=TODAY)
    expiry = market.expiries("NSE_EQ|INE467B01029")[-2]
    options = market.option_contracts("TCS", expiry)
    assert options and options[0]["underlying_type"] == "EQUITY"
    (future,) = market.future_contracts("TCS", expiry)
    assert (
        len(market.candles(future["instrument_key"], "day", expiry - timedelta(days=20), expiry))
        > 10
    )
    assert {d.weekday() for d in market.expiries("MYIDX")} <= {WED, TUE, 1}
    assert market.option_contracts("MYIDX", market.expiries("MYIDX")[-1])[0]["weekly"] in (
        True,
        False,
    )
    # Adding profiles never renumbers the defaults' exchange tokens.
    default = SyntheticMarket(seed=7, today=TODAY)
    assert default.contracts("NIFTY", date(2025, 8, 28)) == market.contracts(
        "NIFTY", date(2025, 8, 28)
    )
