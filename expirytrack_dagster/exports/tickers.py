"""Export tickers: one readable, unique name per contract, in the exchanges' trading-symbol style.

NSE's F&O trading symbols (the ones a trader types into a terminal), used for every underlying:

- monthly option: underlying, ``YY``, ``MMM``, strike, ``CE``/``PE`` — ``NIFTY25AUG24500CE``
- weekly option: underlying, ``YY``, month code ``1``–``9``/``O``/``N``/``D``, ``DD``, strike,
  type — ``NIFTY2581424500CE`` (expires 14 Aug 2025)
- future: underlying, ``YY``, ``MMM``, ``FUT`` — ``NIFTY25AUGFUT``; a weekly future (BSE has
  listed them) ``YY`` + month code + ``DD`` + ``FUT``

BSE's SENSEX and BANKEX derivatives follow the same rules: since 10 October 2022 BSE's contract
master names its series "Underlying+YY+MMM+Strike+CE/PE" for monthly and
"Underlying+YY+M+DD+Strike+CE/PE" for weekly contracts, with the same 1–9/O/N/D month code (BSE
notice "Enhancement in Standardized Contract Master file format for Equity Derivatives Segment",
14 September 2022), so ``SENSEX2581481000CE`` is both exchanges' style.

A weekly option carries its expiry day, so two expiries of the same month never share a ticker;
a monthly one is the only monthly expiry of its month. Strikes keep their decimals
(``RELIANCE25AUG1422.5CE``). Unlike tools whose AmiBroker tickers drop the expiry, the same strike
of two expiries can never collapse into one symbol — and :class:`TickerBook` refuses an export in
which data breaking the convention (say, two monthly expiries in one month) would make it happen.
"""

from __future__ import annotations

from datetime import date

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKLY_MONTH_CODES = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "O", "N", "D")


def strike_text(strike: float) -> str:
    """``24500`` for a whole strike, ``1422.5`` otherwise (no trailing zeros)."""
    return f"{strike:.4f}".rstrip("0").rstrip(".")


def expiry_code(expiry: date, weekly: bool) -> str:
    """``25AUG`` for a monthly expiry, ``25814`` for a weekly one (14 Aug 2025), ``25O07`` in
    October, ``25N04``/``25D02`` in November/December."""
    year = f"{expiry.year % 100:02d}"
    if weekly:
        return f"{year}{WEEKLY_MONTH_CODES[expiry.month - 1]}{expiry.day:02d}"
    return f"{year}{MONTHS[expiry.month - 1]}"


def ticker(
    underlying: str, expiry: date, instrument_type: str, strike: float | None, weekly: bool
) -> str:
    """The contract's ticker (see the module docstring for the convention)."""
    code = expiry_code(expiry, weekly)
    if instrument_type == "FUT":
        return f"{underlying}{code}FUT"
    if instrument_type not in ("CE", "PE") or strike is None:
        raise ValueError(f"no ticker for a {instrument_type} contract with strike {strike}")
    return f"{underlying}{code}{strike_text(strike)}{instrument_type}"


class TickerCollision(ValueError):
    """Two contracts of one export would share a ticker."""


class TickerBook:
    """The tickers one export has handed out, each to exactly one instrument key.

    Writers that name contracts by ticker (AmiBroker's ticker column, MetaTrader's file names)
    claim each ticker as its contract starts; a second contract arriving at a ticker already
    taken is refused instead of silently merged into, or overwriting, the first one's bars.
    """

    def __init__(self) -> None:
        self._owners: dict[str, str] = {}

    def claim(self, name: str, instrument_key: str) -> str:
        """``name`` for ``instrument_key``; :class:`TickerCollision` if another contract has it."""
        owner = self._owners.setdefault(name, instrument_key)
        if owner != instrument_key:
            raise TickerCollision(
                f"contracts {owner} and {instrument_key} would both export as {name} (same "
                "underlying, expiry, strike and type): export them in separate selections"
            )
        return name
