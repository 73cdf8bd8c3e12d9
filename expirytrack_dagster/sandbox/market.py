"""The synthetic market: expiries, contracts and candles, deterministic from a seed.

Every (contract, trading day) is generated from its own random stream, so the same request
always returns the same candles whatever was asked before and however the date range is split.
The HTTP endpoints serve exactly what these methods return.
"""

from __future__ import annotations

import functools
import json
import math
import threading
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.sandbox.candles import (
    CANDLE_COLUMNS,
    EMPTY_BARS,
    INTERVAL_MINUTES,
    Bars,
    aggregate,
    render_day,
    session_of,
)
from expirytrack_dagster.sandbox.contracts import (
    ContractSpec,
    ExpiryContracts,
    build_expiry,
    parse_expired_key,
    token_slot,
)
from expirytrack_dagster.sandbox.day_texts import DAY_TEXTS
from expirytrack_dagster.sandbox.expiries import FIRST_DAY, expiry_calendar
from expirytrack_dagster.sandbox.paths import (
    POINTS_PER_MINUTE,
    DailyPath,
    minute_weights,
    previous_trading_day,
    trading_days,
    trading_flags,
)
from expirytrack_dagster.sandbox.pricing import RISK_FREE_RATE, black76, smile_iv, to_ticks
from expirytrack_dagster.sandbox.profiles import ProfileBook, UnderlyingProfile, build_book
from expirytrack_dagster.sandbox.truth import truth_candles, truth_index_candles

_SECONDS_PER_YEAR = 365.0 * 86400.0

INDEX_MINUTES_FROM = date(2022, 1, 1)
"""The first day the V3 endpoint serves an underlying's candles: the Upstox docs say minute data
starts in January 2022 (the sandbox starts every unit there, day candles included)."""

_STOCK_TICK_PAISE = 5
"""Tick of an underlying share (₹0.05); an index is quoted to the paisa (0.01 point)."""


class UnknownInstrument(KeyError):
    """The instrument key names no underlying or expired contract the sandbox knows."""


class SyntheticMarket:
    """Synthetic expiries, contracts and candles for every profile, as of a movable ``today``."""

    def __init__(
        self,
        profiles: ProfileBook | tuple[UnderlyingProfile, ...] | None = None,
        *,
        seed: int = 7,
        today: date,
        history_days: int = 365,
    ):
        if profiles is None:
            profiles = build_book()
        elif not isinstance(profiles, ProfileBook):
            profiles = ProfileBook(tuple(profiles))
        self.book = profiles
        self.seed = seed
        self.today = today
        self.history_days = history_days
        self._paths: dict[int, DailyPath] = {}
        self._paths_lock = threading.Lock()
        # Per-instance caches: each sandbox has its own seed, and the caches die with it. The
        # rendered day texts, the largest cost, are shared by markets of one seed (day_texts).
        self._expiry_contracts = functools.lru_cache(maxsize=512)(self._build_expiry_contracts)
        self._index_points = functools.lru_cache(maxsize=512)(self._build_index_points)
        self._forward_points = functools.lru_cache(maxsize=512)(self._build_forward_points)
        self._atm_iv = functools.lru_cache(maxsize=4096)(self._build_atm_iv)
        self._minute_bars = functools.lru_cache(maxsize=512)(self._build_minute_bars)
        self._oi_at_close = functools.lru_cache(maxsize=8192)(self._build_oi_at_close)
        self._underlying_bars = functools.lru_cache(maxsize=512)(self._build_underlying_bars)
        self._underlying_json = functools.lru_cache(maxsize=1024)(self._render_underlying_day)

    # ---- listing -------------------------------------------------------------------------

    def set_today(self, today: date) -> None:
        """Move the market's clock: expiries after ``today`` and candles after it disappear."""
        self.today = today

    def warm_up(self) -> None:
        """Load the trading calendar and expiry calendars now rather than on the first request."""
        trading_flags()
        for profile in self.book.profiles:
            expiry_calendar(profile)

    def profile(self, symbol_or_key: str) -> UnderlyingProfile:
        """The profile named by symbol (``NIFTY``) or underlying key (``NSE_INDEX|Nifty 50``)."""
        try:
            return self.book.get(symbol_or_key)
        except KeyError:
            raise UnknownInstrument(symbol_or_key) from None

    def expiries(self, symbol_or_key: str) -> list[date]:
        """Expiries the expiries endpoint lists today: from ``today - history_days`` to ``today``."""
        profile = self.profile(symbol_or_key)
        start = self.today - timedelta(days=self.history_days)
        return expiry_calendar(profile).between(start, self.today)

    def is_monthly(self, symbol_or_key: str, expiry: date) -> bool:
        """True for the last expiry of its month (the one with a future)."""
        return expiry_calendar(self.profile(symbol_or_key)).is_monthly(expiry)

    def expiry_contracts(self, symbol_or_key: str, expiry: date) -> ExpiryContracts | None:
        """All contract specs of a listed expiry, or None when ``expiry`` is not listed today."""
        slot = self._slot(symbol_or_key)
        if expiry not in set(self.expiries(symbol_or_key)):
            return None
        return self._expiry_contracts(slot, expiry)

    def option_contracts(self, symbol_or_key: str, expiry: date) -> list[dict[str, Any]]:
        """What the option contract endpoint returns (empty for a date that is not an expiry)."""
        found = self.expiry_contracts(symbol_or_key, expiry)
        return [] if found is None else [c.as_json() for c in found.options]

    def future_contracts(self, symbol_or_key: str, expiry: date) -> list[dict[str, Any]]:
        """What the future contract endpoint returns (empty for weekly expiries)."""
        found = self.expiry_contracts(symbol_or_key, expiry)
        return [] if found is None else [c.as_json() for c in found.futures]

    def contracts(self, symbol_or_key: str, expiry: date) -> list[dict[str, Any]]:
        """Options then futures of ``expiry``, as the two contract endpoints return them."""
        return self.option_contracts(symbol_or_key, expiry) + self.future_contracts(
            symbol_or_key, expiry
        )

    def contract(self, expired_key: str) -> ContractSpec:
        """The contract behind an expired instrument key.

        Raises ValueError for a malformed key and UnknownInstrument for a well-formed key that
        names no contract expired by ``today`` (any expiry of the calendar, listed or not).
        """
        segment, token, expiry = parse_expired_key(expired_key)
        slot, _ = token_slot(token)
        if not 0 <= slot < len(self.book.profiles) or expiry > self.today:
            raise UnknownInstrument(expired_key)
        profile = self.book.profiles[slot]
        if profile.segment != segment or expiry not in expiry_calendar(profile):
            raise UnknownInstrument(expired_key)
        spec = self._expiry_contracts(slot, expiry).by_token().get(token)
        if spec is None:
            raise UnknownInstrument(expired_key)
        return spec

    # ---- ground truth --------------------------------------------------------------------

    def expiry_specs(self, symbol_or_key: str, expiry: date) -> list[ContractSpec]:
        """Every contract (options and the future) of an expiry of the calendar up to ``today``.

        Unlike ``expiry_contracts`` this does not need ``expiry`` to be listed today: the candle
        endpoint serves any expired contract. Raises UnknownInstrument for an unknown
        underlying or a date that is not one of its expiries up to ``today``.
        """
        profile = self.profile(symbol_or_key)
        if expiry > self.today or expiry not in expiry_calendar(profile):
            raise UnknownInstrument(f"{profile.symbol} has no expiry on {expiry}")
        found = self._expiry_contracts(self._slot(symbol_or_key), expiry)
        return [*found.options, *found.futures]

    def truth_contract_keys(self, symbol_or_key: str, expiry: date) -> list[str]:
        """The expired instrument keys of every contract of the expiry, sorted."""
        return sorted(spec.expired_key for spec in self.expiry_specs(symbol_or_key, expiry))

    def truth_candles(
        self,
        symbol_or_key: str,
        expiry: date,
        interval: str = "1minute",
        from_date: date | None = None,
        to_date: date | None = None,
    ) -> pd.DataFrame:
        """Ground truth: every candle of every contract of the expiry (see ``sandbox.truth``).

        Columns ``expired_instrument_key, timestamp (IST), open, high, low, close, volume,
        open_interest``, sorted by key then timestamp; dates inclusive, None for the contracts'
        whole life. Straight from the model: no HTTP, span limit or fault applies.
        """
        specs = self.expiry_specs(symbol_or_key, expiry)
        return truth_candles(self, specs, interval, from_date, to_date)

    # ---- candles -------------------------------------------------------------------------

    def candles(
        self, expired_key: str, interval: str, from_date: date, to_date: date
    ) -> pd.DataFrame:
        """What a client gets from the candle endpoint for this request, as a frame.

        Ascending by ``timestamp`` (timezone-aware IST) with the columns ``CANDLE_COLUMNS``, the
        way ``expirytrack_dagster.upstox.models.parse_candles`` reads a response, but built
        without it so that tests comparing the two check the parser too. For a request inside
        the span limit; ``candle_rows`` gives the raw JSON rows.
        """
        rows = self.candle_rows(expired_key, interval, from_date, to_date)
        frame = pd.DataFrame(rows[::-1], columns=list(CANDLE_COLUMNS))
        stamps = pd.to_datetime(frame["timestamp"], format="%Y-%m-%dT%H:%M:%S%z", utc=True)
        frame["timestamp"] = stamps.dt.tz_convert(IST)
        frame[["open", "high", "low", "close"]] = frame[["open", "high", "low", "close"]].astype(
            "float64"
        )
        frame[["volume", "open_interest"]] = frame[["volume", "open_interest"]].astype("int64")
        return frame

    def candle_rows(
        self, contract: str | ContractSpec, interval: str, from_date: date, to_date: date
    ) -> list[list]:
        """The endpoint's ``data.candles`` rows ``[ts, o, h, l, c, volume, oi]``, newest first.

        ``contract`` is an expired instrument key or a resolved contract; both dates inclusive.
        """
        spec = self.contract(contract) if isinstance(contract, str) else contract
        return json.loads(
            f"[{','.join(self.candle_json_days(spec, interval, from_date, to_date))}]"
        )

    def candle_json_days(
        self, spec: ContractSpec, interval: str, from_date: date, to_date: date
    ) -> list[str]:
        """The JSON rows of each traded day in the range, newest day first (rows newest first).

        Joined with commas inside ``[...]`` they are the response's ``candles`` array; each
        day's text is cached, so repeated and overlapping requests cost almost nothing.
        """
        if interval not in INTERVAL_MINUTES:
            raise ValueError(f"unknown interval {interval!r}")
        start = max(from_date, spec.listing, FIRST_DAY)
        end = min(to_date, spec.expiry, self.today)
        texts = (self._day_json(spec, day, interval) for day in reversed(trading_days(start, end)))
        return [text for text in texts if text]

    def _day_json(self, spec: ContractSpec, day: date, interval: str) -> str:
        return DAY_TEXTS.get(
            (self.seed, spec, day, interval), lambda: self._render_day(spec, day, interval)
        )

    def _render_day(self, spec: ContractSpec, day: date, interval: str) -> str:
        return render_day(day, aggregate(self._minute_bars(spec, day), interval), interval)

    def minute_bars(self, spec: ContractSpec, day: date) -> Bars:
        """The one-minute bars ``spec`` traded on ``day`` (empty outside its life)."""
        if not spec.listing <= day <= min(spec.expiry, self.today):
            return EMPTY_BARS
        return self._minute_bars(spec, day)

    # ---- the underlying's own candles (the V3 endpoint) ------------------------------------

    def underlying_profile(self, underlying_key: str) -> UnderlyingProfile:
        """The profile whose own instrument key is ``underlying_key`` (``NSE_INDEX|Nifty 50``,
        ``NSE_EQ|INE002A01018``); UnknownInstrument for anything else, a symbol included."""
        try:
            profile = self.book.get(underlying_key)
        except KeyError:
            raise UnknownInstrument(underlying_key) from None
        if profile.instrument_key != underlying_key:
            raise UnknownInstrument(underlying_key)
        return profile

    def underlying_minute_bars(self, underlying_key: str, day: date) -> Bars:
        """The underlying's one-minute bars of ``day``: every session minute, OHLC from the same
        intraday path the futures and options are priced off; volume 0 for an index, shares
        traded for a stock; open interest 0. Empty on a non-trading day, after ``today`` and
        before :data:`INDEX_MINUTES_FROM`."""
        profile = self.underlying_profile(underlying_key)
        if not INDEX_MINUTES_FROM <= day <= self.today or session_of(day) is None:
            return EMPTY_BARS
        return self._underlying_bars(self.book.slot(profile.symbol), day)

    def underlying_json_days(
        self, underlying_key: str, interval: str, from_date: date, to_date: date
    ) -> list[str]:
        """The V3 endpoint's JSON rows for each day of the range, newest day first (rows newest
        first); ``interval`` one of ``INTERVAL_MINUTES``; nothing before
        :data:`INDEX_MINUTES_FROM` or after ``today``."""
        if interval not in INTERVAL_MINUTES:
            raise ValueError(f"unknown interval {interval!r}")
        profile = self.underlying_profile(underlying_key)
        slot = self.book.slot(profile.symbol)
        start, end = max(from_date, INDEX_MINUTES_FROM), min(to_date, self.today)
        texts = (
            self._underlying_json(slot, day, interval) for day in reversed(trading_days(start, end))
        )
        return [text for text in texts if text]

    def truth_index_candles(
        self, underlying_key: str, from_date: date, to_date: date, interval: str = "1minute"
    ) -> pd.DataFrame:
        """Ground truth: the underlying's own candles from ``from_date`` to ``to_date`` (inclusive),
        straight from the model (see ``sandbox.truth.truth_index_candles``)."""
        return truth_index_candles(self, underlying_key, interval, from_date, to_date)

    def _render_underlying_day(self, slot: int, day: date, interval: str) -> str:
        return render_day(day, aggregate(self._underlying_bars(slot, day), interval), interval)

    def _build_underlying_bars(self, slot: int, day: date) -> Bars:
        profile = self.book.profiles[slot]
        session = session_of(day)
        assert session is not None
        minutes = session.minutes
        is_index = "_INDEX|" in profile.instrument_key
        tick = 1 if is_index else _STOCK_TICK_PAISE
        points = to_ticks(self._index_points(slot, day), tick).reshape(minutes, POINTS_PER_MINUTE)
        if is_index:
            volume = np.zeros(minutes, dtype=np.int64)
        else:
            rng = np.random.default_rng([self.seed, profile.stable_id, day.toordinal(), 6])
            volume = rng.poisson(profile.liquidity * 40_000.0 * minute_weights(minutes)) + 1
        return Bars(
            np.arange(minutes, dtype=np.int64),
            points[:, 0],
            points.max(axis=1),
            points.min(axis=1),
            points[:, -1],
            volume.astype(np.int64),
            np.zeros(minutes, dtype=np.int64),
        )

    # ---- generation ----------------------------------------------------------------------

    def _slot(self, symbol_or_key: str) -> int:
        try:
            return self.book.slot(symbol_or_key)
        except KeyError:
            raise UnknownInstrument(symbol_or_key) from None

    def path(self, profile: UnderlyingProfile) -> DailyPath:
        """The daily close series of ``profile``."""
        slot = self.book.slot(profile.symbol)
        with self._paths_lock:
            if slot not in self._paths:
                self._paths[slot] = DailyPath(profile, self.seed)
            return self._paths[slot]

    def _build_expiry_contracts(self, slot: int, expiry: date) -> ExpiryContracts:
        profile = self.book.profiles[slot]
        monthly = expiry_calendar(profile).is_monthly(expiry)
        return build_expiry(profile, slot, expiry, monthly, self.path(profile))

    def _build_index_points(self, slot: int, day: date) -> np.ndarray:
        profile = self.book.profiles[slot]
        session = session_of(day)
        assert session is not None
        return self.path(profile).intraday(session)

    def _build_forward_points(
        self, slot: int, expiry: date, day: date
    ) -> tuple[np.ndarray, np.ndarray]:
        """Future level and time to expiry (years) at every simulated point of ``day``."""
        profile = self.book.profiles[slot]
        session = session_of(day)
        expiry_session = session_of(expiry)
        assert session is not None and expiry_session is not None
        spot = self._index_points(slot, day)
        offsets = np.arange(spot.size) * (60.0 / POINTS_PER_MINUTE)
        to_close = (expiry_session.close - session.open).total_seconds()
        tau = np.maximum((to_close - offsets) / _SECONDS_PER_YEAR, 1e-8)
        rng = np.random.default_rng(
            [self.seed, profile.stable_id, day.toordinal(), 2, expiry.toordinal()]
        )
        basis = 0.0006 * rng.standard_normal()
        noise = 0.00003 * rng.standard_normal(spot.size)
        carry = (RISK_FREE_RATE - profile.dividend_yield) * tau
        return spot * np.exp(carry + basis + noise), tau

    def _build_atm_iv(self, slot: int, day: date) -> float:
        profile = self.book.profiles[slot]
        rng = np.random.default_rng([self.seed, profile.stable_id, day.toordinal(), 5])
        return profile.volatility * math.exp(0.12 * rng.standard_normal())

    def _build_minute_bars(self, spec: ContractSpec, day: date) -> Bars:
        if spec.dead:
            return EMPTY_BARS
        profile = spec.profile
        slot = self.book.slot(profile.symbol)
        session = session_of(day)
        assert session is not None
        minutes = session.minutes
        forward, tau = self._forward_points(slot, spec.expiry, day)
        rng = np.random.default_rng(
            [self.seed, profile.stable_id, day.toordinal(), 3, *spec.seed_parts]
        )
        busy = math.exp(0.4 * rng.standard_normal() - 0.08)
        weights = minute_weights(minutes)
        days_left = (spec.expiry - day).days
        if spec.is_future:
            prices = forward
            traded = np.ones(minutes, dtype=bool)
            rate = profile.liquidity * 300.0 * (0.08 + 0.92 * math.exp(-days_left / 25.0)) * busy
        else:
            strike = float(spec.strike or 0.0)
            atm_iv = self._atm_iv(slot, day)
            iv = smile_iv(strike, forward, tau, atm_iv)
            prices = black76(spec.instrument_type == "CE", forward, strike, tau, iv)
            # Trading thins out with distance from the money, measured in standard deviations of
            # the move left to expiry (but at most ten days' worth: far months are illiquid),
            # so far strikes go quiet for whole days.
            horizon = min(max(float(tau[0]), 1 / 365), 10 / 365)
            distance = abs(math.log(strike / forward[0])) / (atm_iv * math.sqrt(horizon))
            nearness = math.exp(-0.5 * (distance / 1.5) ** 2)
            urgency = 0.25 + 0.75 * math.exp(-days_left / 7.0)
            # A minute has a candle when at least one trade happens in it: Poisson with a rate
            # that scales with the underlying's liquidity, so at-the-money NIFTY options trade
            # every minute while a thin underlying's (BANKEX, a stock) skip many.
            trades_per_minute = profile.liquidity * 30.0 * nearness * urgency * busy * weights
            traded = rng.random(minutes) < -np.expm1(-trades_per_minute)
            rate = profile.liquidity * 400.0 * nearness * urgency * busy
        lots = rng.poisson(rate * weights) + 1
        ticks = to_ticks(prices, spec.tick_paise).reshape(minutes, POINTS_PER_MINUTE)
        idx = np.flatnonzero(traded)
        if not idx.size:
            return EMPTY_BARS
        close = ticks[idx, -1]
        single = lots[idx] == 1  # one trade in the minute: open, high, low and close coincide
        open_ = np.where(single, close, ticks[idx, 0])
        high = np.where(single, close, ticks[idx].max(axis=1))
        low = np.where(single, close, ticks[idx].min(axis=1))
        oi = self._open_interest(spec, day, minutes)[idx]
        return Bars(idx, open_, high, low, close, lots[idx] * profile.lot_size, oi)

    def _build_oi_at_close(self, spec: ContractSpec, day: date) -> int:
        profile = spec.profile
        life = max(1, (spec.expiry - spec.listing).days)
        progress = min(1.0, max(0.0, (day - spec.listing).days / life))
        rng = np.random.default_rng(
            [self.seed, profile.stable_id, day.toordinal(), 4, *spec.seed_parts]
        )
        noise = math.exp(0.08 * rng.standard_normal())
        if spec.is_future:
            # Futures open interest builds up, then rolls over to the next month in the last week.
            if progress <= 0.85:
                shape = (progress / 0.85) ** 1.2
            else:
                shape = 1.0 - 0.65 * (progress - 0.85) / 0.15
            lots = profile.liquidity * 200_000 * max(shape, 0.02) * noise
        else:
            spot = self.path(profile).close(day)
            strike = float(spec.strike or 0.0)
            band = profile.strike_band if not spec.weekly else profile.weekly_strike_band
            moneyness = math.log(strike / spot) / band
            out_of_money = (strike >= spot) == (spec.instrument_type == "CE")
            weight = (1.0 if out_of_money else 0.35) * math.exp(-0.5 * (moneyness / 0.45) ** 2)
            lots = profile.liquidity * 120_000 * (0.03 + 0.97 * progress**1.3) * weight * noise
        return profile.lot_size * max(1, round(lots))  # someone holds what traded

    def _open_interest(self, spec: ContractSpec, day: date, minutes: int) -> np.ndarray:
        """Open interest at each minute: moves from yesterday's close level to today's, updated
        every three minutes like the exchange feed."""
        before = previous_trading_day(day)
        start = 0
        if before is not None and before >= spec.listing:
            start = self._oi_at_close(spec, before)
        end = self._oi_at_close(spec, day)
        frac = np.minimum(1.0, (np.arange(minutes) // 3 + 1) * 3 / minutes)
        frac[-1] = 1.0
        lot = spec.profile.lot_size
        return np.rint((start + (end - start) * frac) / lot).astype(np.int64) * lot
