"""The sandbox's underlyings: contract specs, expiry-calendar eras and market character of each."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

MON, TUE, WED, THU, FRI = range(5)
_WEEKDAYS = {"MON": MON, "TUE": TUE, "WED": WED, "THU": THU, "FRI": FRI}


@dataclass(frozen=True)
class ExpiryEra:
    """One period of an underlying's expiry rules, bounded by expiry dates (both inclusive).

    ``weekly`` is the weekday of weekly expiries, or None when only monthly contracts trade; in a
    monthly-only era the expiry is the last ``monthly`` weekday of each month.
    """

    start: date | None
    end: date | None
    weekly: int | None
    monthly: int

    def covers(self, day: date) -> bool:
        """True when an expiry falling on ``day`` follows this era's rules."""
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)


@dataclass(frozen=True)
class UnderlyingProfile:
    """Everything the sandbox needs to list and price an underlying's F&O contracts.

    ``level`` is the long-run index (or share) level the synthetic walk reverts to; ``volatility``
    its annualised volatility, also the at-the-money implied volatility. ``strike_band`` is how
    far (as a fraction) strikes reach beyond the lowest and highest close during a contract's life,
    capped at ``max_strikes`` (97 like the real NIFTY monthly of 28 Aug 2025).
    ``liquidity`` scales volumes and open interest (1.0 = NIFTY).
    """

    symbol: str
    instrument_key: str
    level: float
    strike_step: float
    lot_size: int
    freeze_quantity: int
    eras: tuple[ExpiryEra, ...]
    underlying_type: str = "INDEX"
    volatility: float = 0.14
    strike_band: float = 0.05
    weekly_strike_band: float = 0.04
    max_strikes: int = 97
    weekly_max_strikes: int = 75
    liquidity: float = 1.0
    monthly_life_days: int = 91
    weekly_life_days: int = 35
    dividend_yield: float = 0.012

    @property
    def exchange(self) -> str:
        """ "NSE" or "BSE", from the prefix of the instrument key."""
        return "BSE" if self.instrument_key.startswith("BSE_") else "NSE"

    @property
    def segment(self) -> str:
        """The derivatives segment the contracts trade in, e.g. ``NSE_FO``."""
        return f"{self.exchange}_FO"

    @property
    def stable_id(self) -> int:
        """A seed component that depends only on the symbol (never on Python's hash salt)."""
        return zlib.crc32(self.symbol.encode())

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> UnderlyingProfile:
        """A profile from plain data (JSON/YAML); missing market fields get generic defaults.

        Eras are a list of ``{"start", "end", "weekly", "monthly"}`` with weekdays as ``"THU"``
        etc.; without eras the underlying gets monthly expiries on the exchange's usual weekday.
        """
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown profile fields: {', '.join(sorted(unknown))}")
        values = dict(raw)
        if "eras" in values:
            values["eras"] = tuple(_era_from_mapping(e) for e in values["eras"])
        symbol = str(values.pop("symbol"))
        key = str(values.pop("instrument_key"))
        return generic_profile(symbol, key, **values)


def _weekday(value: Any) -> int | None:
    if value is None or isinstance(value, int):
        return value
    return _WEEKDAYS[str(value).upper()[:3]]


def _era_from_mapping(raw: Mapping[str, Any]) -> ExpiryEra:
    start, end = raw.get("start"), raw.get("end")
    monthly = _weekday(raw.get("monthly", "THU"))
    return ExpiryEra(
        start=None if start is None else date.fromisoformat(str(start)),
        end=None if end is None else date.fromisoformat(str(end)),
        weekly=_weekday(raw.get("weekly")),
        monthly=THU if monthly is None else monthly,
    )


# NSE moved every monthly expiry from the last Thursday to the last Tuesday in September 2025;
# BSE moved from Friday to Tuesday in January 2025 and to Thursday in September 2025.
_NSE_MONTHLY = (
    ExpiryEra(None, date(2025, 8, 31), None, THU),
    ExpiryEra(date(2025, 9, 1), None, None, TUE),
)
_BSE_MONTHLY = (
    ExpiryEra(None, date(2024, 12, 31), None, FRI),
    ExpiryEra(date(2025, 1, 1), date(2025, 8, 31), None, TUE),
    ExpiryEra(date(2025, 9, 1), None, None, THU),
)


def _weeklies_then_monthly(last_weekly: date, *weekly_eras: ExpiryEra) -> tuple[ExpiryEra, ...]:
    after = date.fromordinal(last_weekly.toordinal() + 1)
    monthly = (
        ExpiryEra(after, date(2025, 8, 31), None, THU),
        ExpiryEra(date(2025, 9, 1), None, None, TUE),
    )
    return (*weekly_eras, *monthly)


DEFAULT_PROFILES: tuple[UnderlyingProfile, ...] = (
    UnderlyingProfile(
        symbol="NIFTY",
        instrument_key="NSE_INDEX|Nifty 50",
        level=24500.0,
        strike_step=50,
        lot_size=75,
        freeze_quantity=1800,
        volatility=0.13,
        eras=(
            ExpiryEra(None, date(2025, 8, 31), THU, THU),
            ExpiryEra(date(2025, 9, 1), None, TUE, TUE),
        ),
    ),
    UnderlyingProfile(
        symbol="BANKNIFTY",
        instrument_key="NSE_INDEX|Nifty Bank",
        level=54000.0,
        strike_step=100,
        lot_size=35,
        freeze_quantity=900,
        volatility=0.15,
        strike_band=0.04,
        liquidity=0.8,
        eras=_weeklies_then_monthly(
            date(2024, 11, 13),
            ExpiryEra(None, date(2023, 8, 31), THU, THU),
            ExpiryEra(date(2023, 9, 1), date(2024, 11, 13), WED, WED),
        ),
    ),
    UnderlyingProfile(
        symbol="FINNIFTY",
        instrument_key="NSE_INDEX|Nifty Fin Service",
        level=25500.0,
        strike_step=50,
        lot_size=65,
        freeze_quantity=1800,
        volatility=0.14,
        liquidity=0.3,
        eras=_weeklies_then_monthly(
            date(2024, 11, 19), ExpiryEra(None, date(2024, 11, 19), TUE, TUE)
        ),
    ),
    UnderlyingProfile(
        symbol="MIDCPNIFTY",
        instrument_key="NSE_INDEX|NIFTY MID SELECT",
        level=12700.0,
        strike_step=25,
        lot_size=140,
        freeze_quantity=2800,
        volatility=0.16,
        liquidity=0.25,
        eras=_weeklies_then_monthly(
            date(2024, 11, 18), ExpiryEra(None, date(2024, 11, 18), MON, MON)
        ),
    ),
    UnderlyingProfile(
        symbol="NIFTYNXT50",
        instrument_key="NSE_INDEX|Nifty Next 50",
        level=67000.0,
        strike_step=100,
        lot_size=25,
        freeze_quantity=600,
        volatility=0.16,
        liquidity=0.05,
        eras=_NSE_MONTHLY,
    ),
    UnderlyingProfile(
        symbol="SENSEX",
        instrument_key="BSE_INDEX|SENSEX",
        level=80500.0,
        strike_step=100,
        lot_size=20,
        freeze_quantity=1000,
        volatility=0.13,
        strike_band=0.04,
        weekly_strike_band=0.035,
        liquidity=0.6,
        eras=(
            ExpiryEra(None, date(2024, 12, 31), FRI, FRI),
            ExpiryEra(date(2025, 1, 1), date(2025, 8, 31), TUE, TUE),
            ExpiryEra(date(2025, 9, 1), None, THU, THU),
        ),
    ),
    UnderlyingProfile(
        symbol="BANKEX",
        instrument_key="BSE_INDEX|BANKEX",
        level=62000.0,
        strike_step=100,
        lot_size=30,
        freeze_quantity=900,
        volatility=0.15,
        liquidity=0.05,
        eras=(
            ExpiryEra(None, date(2024, 11, 18), MON, MON),
            ExpiryEra(date(2024, 11, 19), date(2024, 12, 31), None, FRI),
            *_BSE_MONTHLY[1:],
        ),
    ),
    UnderlyingProfile(
        symbol="RELIANCE",
        instrument_key="NSE_EQ|INE002A01018",
        level=1400.0,
        strike_step=10,
        lot_size=500,
        freeze_quantity=10000,
        underlying_type="EQUITY",
        volatility=0.22,
        strike_band=0.08,
        liquidity=0.1,
        dividend_yield=0.004,
        eras=_NSE_MONTHLY,
    ),
)
"""The seven default index underlyings plus one stock (RELIANCE), with plausible 2025 specs."""


def _step_for(level: float) -> float:
    # NSE's strike intervals grow with the price of the underlying.
    for bound, step in ((250, 2.5), (500, 5), (1000, 10), (2500, 20), (5000, 50), (15000, 100)):
        if level < bound:
            return step
    return 250


def generic_profile(symbol: str, instrument_key: str, **overrides: Any) -> UnderlyingProfile:
    """A plausible profile for any underlying, so a user-added symbol works in the sandbox.

    Unset fields are derived deterministically from the symbol: a level, a strike step that
    suits it, a lot worth roughly ₹7 lakh and monthly expiries on the exchange's usual weekday.
    """
    is_index = "_INDEX|" in instrument_key
    spread = zlib.crc32(symbol.encode()) % 1000 / 1000
    level = float(
        overrides.pop("level", 0) or (10000 + 50000 * spread if is_index else 200 + 4000 * spread)
    )
    step = overrides.pop("strike_step", None) or _step_for(level)
    lot = int(overrides.pop("lot_size", 0) or max(1, round(700000 / level / 5) * 5))
    defaults: dict[str, Any] = {
        "underlying_type": "INDEX" if is_index else "EQUITY",
        "freeze_quantity": lot * 24,
        "volatility": 0.15 if is_index else 0.25,
        "strike_band": 0.05 if is_index else 0.08,
        "liquidity": 0.05,
        "eras": _BSE_MONTHLY if instrument_key.startswith("BSE_") else _NSE_MONTHLY,
    }
    defaults.update(overrides)
    return UnderlyingProfile(
        symbol=symbol,
        instrument_key=instrument_key,
        level=level,
        strike_step=step,
        lot_size=lot,
        **defaults,
    )


@dataclass(frozen=True)
class ProfileBook:
    """The profiles a sandbox serves, looked up by symbol or by underlying instrument key.

    Order matters: a profile's position fixes its block of exchange tokens, so user additions
    go after the defaults and never renumber them.
    """

    profiles: tuple[UnderlyingProfile, ...]
    _by_name: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, int] = {}
        for slot, profile in enumerate(self.profiles):
            if profile.symbol in by_name or profile.instrument_key in by_name:
                raise ValueError(
                    f"duplicate underlying {profile.symbol} / {profile.instrument_key}"
                )
            by_name[profile.symbol] = slot
            by_name[profile.instrument_key] = slot
        object.__setattr__(self, "_by_name", by_name)

    def slot(self, symbol_or_key: str) -> int:
        """The position of the profile named by symbol or underlying key (KeyError if unknown)."""
        return self._by_name[symbol_or_key]

    def get(self, symbol_or_key: str) -> UnderlyingProfile:
        """The profile named by symbol or underlying key (KeyError if unknown)."""
        return self.profiles[self._by_name[symbol_or_key]]

    def __contains__(self, symbol_or_key: object) -> bool:
        return symbol_or_key in self._by_name


def build_book(extra: tuple[UnderlyingProfile, ...] = ()) -> ProfileBook:
    """The defaults followed by ``extra``; an extra with a default's symbol replaces it in place."""
    profiles = list(DEFAULT_PROFILES)
    for profile in extra:
        same = [i for i, p in enumerate(profiles) if p.symbol == profile.symbol]
        if same:
            profiles[same[0]] = profile
        else:
            profiles.append(profile)
    return ProfileBook(tuple(profiles))
