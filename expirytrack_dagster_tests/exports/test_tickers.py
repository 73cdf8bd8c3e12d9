"""Tickers: NSE's trading-symbol convention, unique per contract across expiries."""

from __future__ import annotations

from datetime import date

import pytest

from expirytrack_dagster.exports.tickers import strike_text, ticker


def test_known_examples_follow_nse_trading_symbols() -> None:
    assert ticker("NIFTY", date(2025, 8, 28), "CE", 24500.0, weekly=False) == "NIFTY25AUG24500CE"
    assert ticker("NIFTY", date(2025, 8, 14), "PE", 24500.0, weekly=True) == "NIFTY2581424500PE"
    assert ticker("NIFTY", date(2025, 10, 7), "CE", 25000.0, weekly=True) == "NIFTY25O0725000CE"
    assert ticker("BANKNIFTY", date(2025, 12, 30), "FUT", None, weekly=False) == (
        "BANKNIFTY25DECFUT"
    )
    assert ticker("RELIANCE", date(2025, 8, 28), "CE", 1422.5, weekly=False) == (
        "RELIANCE25AUG1422.5CE"
    )


def test_same_strike_of_two_expiries_never_shares_a_ticker() -> None:
    expiries = [(date(2025, 8, d), True) for d in (7, 14, 21)] + [(date(2025, 8, 28), False)]
    expiries += [(date(2024, 8, 29), False), (date(2025, 9, 30), False)]
    names = [
        ticker("NIFTY", expiry, kind, 24500.0, weekly)
        for expiry, weekly in expiries
        for kind in ("CE", "PE")
    ]
    assert len(set(names)) == len(names)


def test_strike_text_keeps_decimals_only_when_present() -> None:
    assert strike_text(24500.0) == "24500"
    assert strike_text(22.5) == "22.5"
    assert strike_text(1422.25) == "1422.25"


def test_an_option_without_strike_is_an_error() -> None:
    with pytest.raises(ValueError, match="no ticker"):
        ticker("NIFTY", date(2025, 8, 28), "CE", None, weekly=False)
