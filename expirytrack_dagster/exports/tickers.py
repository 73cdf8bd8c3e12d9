"""Export tickers: one readable, unique name per contract, in the exchanges' trading-symbol style.

NSE's F&O trading symbols (the ones a trader types into a terminal), used for every underlying
(BSE's SENSEX and BANKEX derivatives follow the same pattern):

- monthly option: underlying, ``YY``, ``MMM``, strike, ``CE``/``PE`` — ``NIFTY25AUG24500CE``
- weekly option: underlying, ``YY``, month code ``1``–``9``/``O``/``N``/``D``, ``DD``, strike,
  type — ``NIFTY2581424500CE`` (expires 14 Aug 2025)
- future: underlying, ``YY``, ``MMM``, ``FUT`` — ``NIFTY25AUGFUT``

A weekly option carries its expiry day, so two expiries of the same month never share a ticker;
a monthly one is the only monthly expiry of its month. Strikes keep their decimals
(``RELIANCE25AUG1422.5CE``). Unlike tools whose AmiBroker tickers drop the expiry, the same strike
of two expiries can never collapse into one symbol.
"""

from __future__ import annotations

from datetime import date

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKLY_MONTH_CODES = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "O", "N", "D")


def strike_text(strike: float) -> str:
    """``24500`` for a whole strike, ``1422.5`` otherwise (no trailing zeros)."""
    return f"{strike:.4f}".rstrip("0").rstrip(".")


def ticker(
    underlying: str, expiry: date, instrument_type: str, strike: float | None, weekly: bool
) -> str:
    """The contract's ticker (see the module docstring for the convention)."""
    year = f"{expiry.year % 100:02d}"
    if instrument_type == "FUT":
        return f"{underlying}{year}{MONTHS[expiry.month - 1]}FUT"
    if instrument_type not in ("CE", "PE") or strike is None:
        raise ValueError(f"no ticker for a {instrument_type} contract with strike {strike}")
    if weekly:
        code = f"{year}{WEEKLY_MONTH_CODES[expiry.month - 1]}{expiry.day:02d}"
    else:
        code = f"{year}{MONTHS[expiry.month - 1]}"
    return f"{underlying}{code}{strike_text(strike)}{instrument_type}"
