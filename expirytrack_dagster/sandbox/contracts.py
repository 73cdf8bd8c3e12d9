"""The contracts listed for each expiry: strikes, exchange tokens, keys and their JSON objects."""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from expirytrack_dagster.sandbox.paths import DailyPath, trading_days
from expirytrack_dagster.sandbox.profiles import UnderlyingProfile

TOKEN_BASE = 35000
"""Exchange tokens start here; each underlying owns a block of ``TOKEN_BLOCK`` tokens."""
TOKEN_BLOCK = 1000
MAX_STRIKES = (TOKEN_BLOCK - 1) // 2 - 1
OPTION_TICK_PAISE = 5
FUTURE_TICK_PAISE = 10

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_KEY = re.compile(r"^(NSE_FO|BSE_FO)\|(\d{1,9})\|(\d{2})-(\d{2})-(\d{4})$")


@dataclass(frozen=True)
class ContractSpec:
    """One synthetic contract: what the contract endpoints list and the candle endpoint prices."""

    profile: UnderlyingProfile
    expiry: date
    instrument_type: str  # "FUT", "CE" or "PE"
    strike: float | None
    token: int
    listing: date
    weekly: bool
    dead: bool  # listed but never traded, as happens to a few far strikes

    @property
    def expired_key(self) -> str:
        """``SEGMENT|token|DD-MM-YYYY``, the key the candle endpoint takes."""
        return f"{self.profile.segment}|{self.token}|{self.expiry:%d-%m-%Y}"

    @property
    def is_future(self) -> bool:
        return self.instrument_type == "FUT"

    @property
    def tick_paise(self) -> int:
        return FUTURE_TICK_PAISE if self.is_future else OPTION_TICK_PAISE

    @property
    def seed_parts(self) -> tuple[int, int, int]:
        """Seed components naming this contract independently of its token."""
        strike = 0 if self.strike is None else round(self.strike * 100)
        kind = ("FUT", "CE", "PE").index(self.instrument_type)
        return self.expiry.toordinal(), strike, kind

    def trading_symbol(self) -> str:
        when = (
            f"{self.expiry.day:02d} {_MONTHS[self.expiry.month - 1]} {self.expiry.year % 100:02d}"
        )
        if self.is_future:
            return f"{self.profile.symbol} FUT {when}"
        return f"{self.profile.symbol} {_number(self.strike)} {self.instrument_type} {when}"

    @property
    def omitted_fields(self) -> tuple[str, ...]:
        """Optional fields this contract's listing leaves out (see ``OPTIONAL_FIELDS``)."""
        digest = zlib.crc32(
            f"{self.profile.symbol}|{self.expiry}|{self.strike}|{self.instrument_type}".encode()
        )
        return _OMISSIONS[digest % len(_OMISSIONS)]

    def as_json(self) -> dict[str, Any]:
        """The object as Upstox lists it (field order of the recorded samples).

        A deterministic few contracts leave out ``freeze_quantity`` and/or ``minimum_lot``
        (``omitted_fields``), which Upstox's SDK models as optional.
        """
        p = self.profile
        out: dict[str, Any] = {
            "name": p.symbol,
            "segment": p.segment,
            "exchange": p.exchange,
            "expiry": self.expiry.isoformat(),
        }
        if not self.is_future:
            out["weekly"] = self.weekly
        out.update(
            {
                "instrument_key": self.expired_key,
                "exchange_token": str(self.token),
                "trading_symbol": self.trading_symbol(),
                "tick_size": self.tick_paise,
                "lot_size": p.lot_size,
                "instrument_type": self.instrument_type,
                "freeze_quantity": p.freeze_quantity,
                "underlying_key": p.instrument_key,
                "underlying_type": p.underlying_type,
                "underlying_symbol": p.symbol,
            }
        )
        if not self.is_future:
            out["strike_price"] = _number(self.strike)
        out["minimum_lot"] = p.lot_size
        for name in self.omitted_fields:
            del out[name]
        return out


OPTIONAL_FIELDS: tuple[str, ...] = ("freeze_quantity", "minimum_lot")
"""Contract fields the sandbox sometimes leaves out.

Upstox's SDK (``ExpiredFutureData``, ``InstrumentData``) declares every field optional; these two
are the ones the ``contracts`` table stores as nullable, so a client must tolerate their absence.
Fields the table needs (lot and tick size, trading symbol, exchange token...) are always sent.
"""
# One contract in eight lacks freeze_quantity, one in eight minimum_lot, one in eight both;
# chosen by a checksum of what names the contract, so the same contracts lack them in every run.
_OMISSIONS: tuple[tuple[str, ...], ...] = (
    ("freeze_quantity",),
    ("minimum_lot",),
    OPTIONAL_FIELDS,
    *([()] * 5),
)


def _number(value: float | None) -> float | int | None:
    # Upstox writes whole numbers without a decimal point (22600, not 22600.0).
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


def parse_expired_key(key: str) -> tuple[str, int, date]:
    """``(segment, token, expiry)`` of an expired instrument key; ValueError if malformed."""
    match = _KEY.match(key)
    if not match:
        raise ValueError(f"not an expired F&O instrument key: {key!r}")
    segment, token, day, month, year = match.groups()
    return segment, int(token), date(int(year), int(month), int(day))


def token_slot(token: int) -> tuple[int, int]:
    """``(profile slot, index inside the slot's block)`` of an exchange token."""
    return divmod(token - TOKEN_BASE, TOKEN_BLOCK)


@dataclass(frozen=True)
class ExpiryContracts:
    """Every contract of one (underlying, expiry): options by strike (PE then CE), then the future."""

    options: tuple[ContractSpec, ...]
    futures: tuple[ContractSpec, ...]

    def by_token(self) -> dict[int, ContractSpec]:
        return {c.token: c for c in (*self.options, *self.futures)}


def listing_date(profile: UnderlyingProfile, expiry: date, monthly: bool) -> date:
    """First trading day of a contract: about 3 months before a monthly expiry, 5 weeks before a weekly."""
    life = profile.monthly_life_days if monthly else profile.weekly_life_days
    days = trading_days(expiry - timedelta(days=life), expiry)
    return days[0] if days else expiry


def build_expiry(
    profile: UnderlyingProfile, slot: int, expiry: date, monthly: bool, path: DailyPath
) -> ExpiryContracts:
    """The contracts of ``profile`` expiring on ``expiry``.

    Strikes cover the lowest to highest close over the contract's life (exchanges add strikes as
    the market moves), widened by the profile's band as far as its strike cap allows. Only the
    monthly expiry has a future.
    """
    listing = listing_date(profile, expiry, monthly)
    spot = path.previous_close(listing)
    low, high = path.close_range(listing, expiry)
    band = profile.strike_band if monthly else profile.weekly_strike_band
    step = profile.strike_step
    low, high = min(low, spot), max(high, spot)
    core_first, core_last = math.floor(low / step), math.ceil(high / step)
    cap = profile.max_strikes if monthly else profile.weekly_max_strikes
    # The band beyond the traded range shrinks to respect the cap; the traded range itself is
    # always covered (up to the token block's capacity).
    margin = min(round(band * spot / step), max(0, (cap - (core_last - core_first + 1)) // 2))
    first, last = core_first - margin, core_last + margin
    if last - first + 1 > MAX_STRIKES:
        first = (first + last) // 2 - MAX_STRIKES // 2
        last = first + MAX_STRIKES - 1
    carry_last = math.ceil(high * (1 + CARRY_ALLOWANCE) / step)
    base = TOKEN_BASE + slot * TOKEN_BLOCK
    options: list[ContractSpec] = []
    for i, n in enumerate(range(first, last + 1)):
        strike = round(n * step, 2)
        for offset, kind in ((2, "PE"), (1, "CE")):
            options.append(
                ContractSpec(
                    profile=profile,
                    expiry=expiry,
                    instrument_type=kind,
                    strike=strike,
                    token=base + 1 + 2 * i + (offset - 1),
                    listing=listing,
                    weekly=not monthly,
                    dead=_never_trades(
                        profile, expiry, strike, kind, max(core_first - n, n - carry_last, 0)
                    ),
                )
            )
    futures = ()
    if monthly:
        futures = (ContractSpec(profile, expiry, "FUT", None, base, listing, False, False),)
    return ExpiryContracts(tuple(options), futures)


NEVER_TRADED_MARGIN = 5
# Near-money is judged against the future's close, which sits above the index by the carry
# (about 1.5 % three months out): the range a strike must stay clear of is widened by this.
CARRY_ALLOWANCE = 0.02


def _never_trades(
    profile: UnderlyingProfile, expiry: date, strike: float, kind: str, strikes_outside: int
) -> bool:
    # One in eight strikes that stay more than NEVER_TRADED_MARGIN strikes outside every close
    # the underlying made in the contract's life never sees a trade. A strike the price came
    # near always trades, as in the real market. Chosen by a checksum so the same contracts stay
    # dead whatever the seed of the price paths.
    if strikes_outside <= NEVER_TRADED_MARGIN:
        return False
    digest = zlib.crc32(f"{profile.symbol}|{expiry}|{strike}|{kind}".encode())
    return digest % 8 == 0
