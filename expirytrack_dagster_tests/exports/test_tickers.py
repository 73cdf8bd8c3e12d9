"""Tickers: NSE's (and BSE's) trading-symbol convention, unique per contract across expiries."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from expirytrack_dagster.exports.tickers import (
    TickerBook,
    TickerCollision,
    expiry_code,
    strike_text,
    ticker,
)


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
    assert ticker("IDEA", date(2024, 6, 27), "PE", 17.5, weekly=False) == "IDEA24JUN17.5PE"


def test_bse_contracts_follow_bse_series_codes() -> None:
    # BSE's contract master: Underlying+YY+MMM+Strike+CE/PE monthly, Underlying+YY+M+DD+... weekly.
    assert ticker("SENSEX", date(2025, 8, 14), "CE", 81000.0, weekly=True) == "SENSEX2581481000CE"
    assert ticker("BANKEX", date(2025, 8, 26), "PE", 58000.0, weekly=False) == "BANKEX25AUG58000PE"
    assert ticker("SENSEX", date(2025, 8, 26), "FUT", None, weekly=False) == "SENSEX25AUGFUT"
    assert ticker("SENSEX", date(2025, 8, 14), "FUT", None, weekly=True) == "SENSEX25814FUT"


def test_weekly_month_codes_for_october_to_december() -> None:
    assert expiry_code(date(2025, 10, 7), weekly=True) == "25O07"
    assert expiry_code(date(2025, 11, 4), weekly=True) == "25N04"
    assert expiry_code(date(2025, 12, 2), weekly=True) == "25D02"
    assert expiry_code(date(2026, 1, 6), weekly=True) == "26106"
    assert expiry_code(date(2026, 1, 27), weekly=False) == "26JAN"


def test_weekly_and_monthly_of_one_month_differ() -> None:
    weekly = ticker("NIFTY", date(2025, 8, 21), "CE", 24500.0, weekly=True)
    monthly = ticker("NIFTY", date(2025, 8, 28), "CE", 24500.0, weekly=False)
    assert weekly != monthly
    assert (weekly, monthly) == ("NIFTY2582124500CE", "NIFTY25AUG24500CE")


def test_two_years_of_expiries_and_strikes_give_one_ticker_per_contract() -> None:
    contracts = set()
    day = date(2024, 1, 4)
    while day.year < 2026:
        last_of_month = (day + timedelta(days=7)).month != day.month
        for strike in (7.5, 75.0, 750.0, 22.5, 225.0, 2250.0, 22500.0, 24500.0, 24550.0):
            for kind in ("CE", "PE"):
                contracts.add((day, kind, strike, not last_of_month))
        if last_of_month:
            contracts.add((day, "FUT", None, False))
        day += timedelta(days=7)
    names = {
        ticker("NIFTY", expiry, kind, strike, weekly) for expiry, kind, strike, weekly in contracts
    }
    assert len(names) == len(contracts) == 104 * 18 + 24


def test_strike_text_keeps_decimals_only_when_present() -> None:
    assert strike_text(24500.0) == "24500"
    assert strike_text(22.5) == "22.5"
    assert strike_text(1422.25) == "1422.25"


def test_an_option_without_strike_is_an_error() -> None:
    with pytest.raises(ValueError, match="no ticker"):
        ticker("NIFTY", date(2025, 8, 28), "CE", None, weekly=False)


def test_ticker_book_refuses_a_second_contract_on_one_ticker() -> None:
    book = TickerBook()
    assert book.claim("NIFTY25AUG24500CE", "NSE_FO|1|28-08-2025") == "NIFTY25AUG24500CE"
    # The same contract again (it continued into the next batch) is fine.
    assert book.claim("NIFTY25AUG24500CE", "NSE_FO|1|28-08-2025") == "NIFTY25AUG24500CE"
    with pytest.raises(TickerCollision, match=r"NSE_FO\|1\|28-08-2025 and NSE_FO\|2\|07-08-2025"):
        book.claim("NIFTY25AUG24500CE", "NSE_FO|2|07-08-2025")
