"""The sandbox's live endpoints: the option chain and current contracts at the sandbox's "now".

``/v2/option/chain`` and ``/v2/option/contract`` (without ``expiry_date``) answer in the shapes of
``upstox-live-api.md``, from the same synthetic market the candle endpoints serve: a chain at
``10:31:20`` reflects every 1-minute candle that *ended* by then (the 10:30 candle is the last),
so ``ltp`` is the last traded close of the session (the previous session's close before the
first trade), ``volume`` the session's volume so far, ``oi`` the exchange OI at that minute and
``prev_oi`` the previous session's closing OI; ``close_price`` is the previous session's last
close. OI, volume and quantities are in units, ``iv`` and ``pop`` in percent, greeks by
Black-76 on the model's own forward and smile (theta per calendar day, vega per vol point),
rounded to 4 decimals as Upstox does; ``pcr`` is per strike (put OI / call OI, 0 when the call
has none). A past expiry answers 200 with ``data: []``.

"Now" is a :class:`LiveClock`: the real clock by default, or a settable moment running at a time
scale, so a test plays a whole session in seconds.
"""

from __future__ import annotations

import math
import threading
import time as _time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.sandbox.candles import EMPTY_BARS, Bars, session_of
from expirytrack_dagster.sandbox.contracts import ContractSpec, listing_date
from expirytrack_dagster.sandbox.expiries import expiry_calendar
from expirytrack_dagster.sandbox.market import SyntheticMarket
from expirytrack_dagster.sandbox.paths import POINTS_PER_MINUTE, previous_trading_day
from expirytrack_dagster.sandbox.pricing import RISK_FREE_RATE, black76, norm_cdf, smile_iv

CURRENT_EXPIRY_HORIZON_DAYS = 120
"""How far ahead current expiries are listed (a monthly is listed about three months ahead)."""


class LiveClock:
    """The sandbox's "now" in IST: ``start`` plus the time since it was set, times ``speed``.

    ``LiveClock()`` follows the real clock. ``set(moment, speed=60)`` makes a minute pass every
    real second from ``moment`` on; ``speed=0`` freezes it. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._start: datetime | None = None
        self._since = 0.0
        self._speed = 1.0

    def set(self, moment: datetime, speed: float = 1.0) -> None:
        """From now on the clock reads ``moment`` (timezone-aware) and runs ``speed`` times fast."""
        if moment.tzinfo is None:
            raise ValueError("the live clock needs a timezone-aware moment")
        if speed < 0:
            raise ValueError("speed must not be negative")
        with self._lock:
            self._start, self._since, self._speed = moment, _time.monotonic(), speed

    def now(self) -> datetime:
        """The sandbox's current moment, in IST."""
        with self._lock:
            if self._start is None:
                return datetime.now(IST)
            elapsed = (_time.monotonic() - self._since) * self._speed
            return (self._start + timedelta(seconds=elapsed)).astimezone(IST)


def live_key(spec: ContractSpec) -> str:
    """The instrument key of a current contract: ``SEGMENT|token``, no ``|DD-MM-YYYY`` suffix."""
    return f"{spec.profile.segment}|{spec.token}"


@dataclass(frozen=True)
class _Moment:
    """Where the chain stands: the session day and the last completed minute (-1: none yet)."""

    day: date
    last_minute: int
    minutes: int


def _moment(now: datetime) -> _Moment:
    day = now.date()
    session = session_of(day)
    if session is None:  # a holiday or weekend shows the last session as it closed
        before = previous_trading_day(day)
        assert before is not None
        closed = session_of(before)
        assert closed is not None
        return _Moment(before, closed.minutes - 1, closed.minutes)
    done = int((now - session.open).total_seconds() // 60)
    return _Moment(day, min(max(done, 0), session.minutes) - 1, session.minutes)


class LiveMarket:
    """The live answers of one synthetic market as of a :class:`LiveClock`."""

    def __init__(self, market: SyntheticMarket, clock: LiveClock):
        self.market = market
        self.clock = clock
        # The market's own bar cache is sized for candle requests; a live chain asks for every
        # contract of an expiry each minute, so the live side keeps its session's bars itself.
        self._lock = threading.Lock()
        self._day: date | None = None
        self._bars: dict[ContractSpec, Bars] = {}
        self._previous: dict[ContractSpec, tuple[float, int]] = {}

    def current_expiries(self, symbol_or_key: str, today: date | None = None) -> list[date]:
        """Expiries not yet past on ``today`` (default: the clock's date) whose contracts are listed."""
        profile = self.market.profile(symbol_or_key)
        today = today or self.clock.now().date()
        calendar = expiry_calendar(profile)
        found = calendar.between(today, today + timedelta(days=CURRENT_EXPIRY_HORIZON_DAYS))
        return [e for e in found if listing_date(profile, e, calendar.is_monthly(e)) <= today]

    def contracts(self, symbol_or_key: str, expiry: date | None = None) -> list[dict[str, Any]]:
        """``/v2/option/contract``: the CE/PE contracts of ``expiry``, or of every current expiry."""
        expiries = self.current_expiries(symbol_or_key)
        if expiry is not None:
            expiries = [expiry] if expiry in expiries else []
        out = []
        for found in expiries:
            for spec in self._options(symbol_or_key, found):
                listed = spec.as_json()
                listed["instrument_key"] = live_key(spec)
                out.append(listed)
        return out

    def option_chain(self, symbol_or_key: str, expiry: date) -> list[dict[str, Any]]:
        """``/v2/option/chain``: one object per strike, ascending; empty for a past expiry."""
        now = self.clock.now()
        if expiry not in self.current_expiries(symbol_or_key, now.date()):
            return []
        profile = self.market.profile(symbol_or_key)
        slot = self.market.book.slot(profile.symbol)
        at = _moment(now)
        if self.market.today < at.day:
            self.market.set_today(at.day)  # the candle endpoints' "today" follows the live clock
        point = max(at.last_minute, 0) * POINTS_PER_MINUTE + POINTS_PER_MINUTE - 1
        spot_points = self.market._index_points(slot, at.day)
        spot = float(spot_points[point]) if at.last_minute >= 0 else float(spot_points[0])
        forward, tau = self.market._forward_points(slot, expiry, at.day)
        atm_iv = self.market._atm_iv(slot, at.day)
        legs: dict[float, dict[str, dict[str, Any]]] = {}
        for spec in self._options(symbol_or_key, expiry):
            legs.setdefault(float(spec.strike or 0.0), {})[spec.instrument_type] = self._leg(
                spec, at, float(forward[point]), float(tau[point]), atm_iv
            )
        rows = []
        for strike in sorted(legs):
            call, put = legs[strike]["CE"], legs[strike]["PE"]
            call_oi, put_oi = call["market_data"]["oi"], put["market_data"]["oi"]
            rows.append(
                {
                    "expiry": expiry.isoformat(),
                    "pcr": round(put_oi / call_oi, 4) if call_oi else 0,
                    "strike_price": int(strike) if strike.is_integer() else strike,
                    "underlying_key": profile.instrument_key,
                    "underlying_spot_price": round(spot, 2),
                    "call_options": call,
                    "put_options": put,
                }
            )
        return rows

    def _options(self, symbol_or_key: str, expiry: date) -> tuple[ContractSpec, ...]:
        slot = self.market.book.slot(self.market.profile(symbol_or_key).symbol)
        return self.market._expiry_contracts(slot, expiry).options

    def _leg(
        self, spec: ContractSpec, at: _Moment, forward: float, tau: float, atm_iv: float
    ) -> dict[str, Any]:
        market = self.market
        lot = spec.profile.lot_size
        close_price, prev_oi, bars = self._session_data(spec, at.day)
        done = bars.minute <= at.last_minute
        ltp = float(bars.close[done][-1]) / 100.0 if done.any() else close_price
        volume = int(bars.volume[done].sum())
        oi = prev_oi
        if at.last_minute >= 0 and spec.listing <= at.day:
            oi = int(market._open_interest(spec, at.day, at.minutes)[at.last_minute])
        strike = float(spec.strike or 0.0)
        is_call = spec.instrument_type == "CE"
        iv = float(smile_iv(strike, np.array([forward]), np.array([tau]), atm_iv)[0])
        greeks = _greeks(is_call, forward, strike, tau, iv)
        tick = spec.tick_paise / 100.0
        spread = max(tick, round(ltp * 0.002 / tick) * tick)
        depth = lot * max(1, round(spec.profile.liquidity * 20))
        return {
            "instrument_key": live_key(spec),
            "market_data": {
                "ltp": _price(ltp),
                "volume": volume,
                "oi": oi,
                "close_price": _price(close_price),
                "bid_price": _price(max(tick, ltp - spread)),
                "bid_qty": depth,
                "ask_price": _price(ltp + spread),
                "ask_qty": depth,
                "prev_oi": prev_oi,
            },
            "option_greeks": greeks,
        }

    def _session_data(self, spec: ContractSpec, day: date) -> tuple[float, int, Bars]:
        """Previous close, previous closing OI and the session's bars of ``spec``, kept per day."""
        with self._lock:
            if self._day != day:
                self._day, self._bars, self._previous = day, {}, {}
            if spec not in self._bars:
                market = self.market
                before = previous_trading_day(day)
                prev = market.minute_bars(spec, before) if before is not None else EMPTY_BARS
                close = float(prev.close[-1]) / 100.0 if len(prev) else 0.0
                oi = (
                    int(market._oi_at_close(spec, before))
                    if before and before >= spec.listing
                    else 0
                )
                self._previous[spec] = (close, oi)
                self._bars[spec] = market.minute_bars(spec, day)
            return (*self._previous[spec], self._bars[spec])


def _price(rupees: float) -> float | int:
    value = round(rupees, 2)
    return int(value) if float(value).is_integer() else value


def _greeks(
    is_call: bool, forward: float, strike: float, tau: float, iv: float
) -> dict[str, float]:
    """Black-76 greeks as Upstox sends them: theta per day, vega per vol point, iv and pop in %."""
    tau = max(tau, 1e-8)
    vol_sqrt = iv * math.sqrt(tau)
    d1 = (math.log(forward / strike) + 0.5 * vol_sqrt * vol_sqrt) / vol_sqrt
    d2 = d1 - vol_sqrt
    discount = math.exp(-RISK_FREE_RATE * tau)
    pdf = math.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi)
    n = lambda x: float(norm_cdf(np.array([x]))[0])  # noqa: E731
    delta = discount * (n(d1) if is_call else n(d1) - 1.0)
    gamma = discount * pdf / (forward * vol_sqrt)
    vega = discount * forward * pdf * math.sqrt(tau) / 100.0
    premium = float(black76(is_call, np.array([forward]), strike, np.array([tau]), iv)[0])
    theta_year = -discount * forward * pdf * iv / (2 * math.sqrt(tau)) + RISK_FREE_RATE * premium
    pop = n(d2) if is_call else n(-d2)
    return {
        "vega": round(vega, 4),
        "theta": round(theta_year / 365.0, 4),
        "gamma": round(gamma, 4),
        "delta": round(delta, 4),
        "iv": round(iv * 100.0, 2),
        "pop": round(pop * 100.0, 2),
    }
