"""Black-76: the normal CDF, textbook prices, parity, the IV solver round trip and the greeks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from expirytrack_dagster.research import black76


def test_norm_cdf_matches_erfc_to_double_precision() -> None:
    x = np.linspace(-12.0, 12.0, 24001)
    reference = np.array([0.5 * math.erfc(-v / math.sqrt(2.0)) for v in x])
    got = black76.norm_cdf(x)
    assert np.max(np.abs(got - reference)) < 1e-15
    near = np.abs(x) < 4.0
    assert np.max(np.abs(got[near] - reference[near]) / reference[near]) < 1e-12


def test_hull_futures_put_example() -> None:
    # Hull, Options, Futures and Other Derivatives (Black's model, "Example 18.x"): a European
    # put on a futures price of 20, strike 20, 4 months, r = 9 %, sigma = 25 % is worth 1.12.
    value = float(black76.price(False, 20.0, 20.0, 4 / 12, 0.09, 0.25))
    assert value == pytest.approx(1.12, abs=0.005)
    # The same with d1 = -d2 = sigma * sqrt(T) / 2 written out with math.erf.
    d1 = 0.25 * math.sqrt(4 / 12) / 2
    n = lambda v: 0.5 * (1 + math.erf(v / math.sqrt(2)))  # noqa: E731
    exact = math.exp(-0.09 * 4 / 12) * 20.0 * (n(d1) - n(-d1))
    assert value == pytest.approx(exact, rel=1e-13)


def test_put_call_parity_on_a_grid() -> None:
    strikes = np.linspace(20000, 30000, 41)
    for tau in (1 / 365, 0.1, 1.0):
        call = black76.price(True, 25000.0, strikes, tau, 0.065, 0.18)
        put = black76.price(False, 25000.0, strikes, tau, 0.065, 0.18)
        parity = math.exp(-0.065 * tau) * (25000.0 - strikes)
        assert np.max(np.abs(call - put - parity)) < 1e-8


def test_implied_vol_round_trip_price_to_iv_to_price() -> None:
    strike, tau, sigma = np.meshgrid(
        np.linspace(21000, 29000, 17),
        np.array([0.5, 2, 7, 30, 90, 365]) / 365,
        np.array([0.05, 0.12, 0.3, 0.8]),
        indexing="ij",
    )
    for is_call in (True, False):
        quotes = black76.price(is_call, 25000.0, strike, tau, 0.065, sigma)
        iv = black76.implied_vol(quotes, is_call, 25000.0, strike, tau, 0.065)
        # Quotes worth at least a paisa of time value are all solved, to 1e-8 in price.
        discount = np.exp(-0.065 * tau)
        intrinsic = discount * np.maximum((25000.0 - strike) * (1 if is_call else -1), 0)
        solvable = quotes - intrinsic > 0.01
        assert np.isfinite(iv[solvable]).all()
        repriced = black76.price(is_call, 25000.0, strike, tau, 0.065, iv)
        assert np.max(np.abs(repriced - quotes)[solvable]) < 1e-8
        # Where the time value is large enough to carry the information, the vol itself.
        clear = (quotes - intrinsic) > 1.0
        assert np.max(np.abs(iv - sigma)[clear]) < 1e-7


def test_implied_vol_is_nan_where_no_volatility_fits() -> None:
    forward, strike, tau, rate = 25000.0, 24000.0, 0.05, 0.065
    intrinsic = math.exp(-rate * tau) * (forward - strike)
    quotes = np.array([intrinsic - 1.0, intrinsic, forward * 1.01, math.nan, 50.0, 1200.0])
    taus = np.array([tau, tau, tau, tau, 0.0, tau])
    iv = black76.implied_vol(quotes, True, forward, strike, taus, rate)
    assert np.isnan(iv[:5]).all()  # below/at intrinsic, above the forward, NaN, expired
    assert 0.0 < iv[5] < 1.0
    assert np.isnan(black76.implied_vol(0.0, False, forward, strike, tau, rate))


def test_vega_matches_a_finite_difference() -> None:
    strikes = np.array([23000.0, 25000.0, 27000.0])
    for is_call in (True, False):
        g = black76.greeks(is_call, 25000.0, strikes, 0.08, 0.065, 0.2)
        up = black76.price(is_call, 25000.0, strikes, 0.08, 0.065, 0.2 + 1e-5)
        down = black76.price(is_call, 25000.0, strikes, 0.08, 0.065, 0.2 - 1e-5)
        per_point = (up - down) / 2e-5 * 0.01
        np.testing.assert_allclose(g["vega"], per_point, rtol=1e-6)


def test_delta_gamma_theta_match_finite_differences() -> None:
    f, k, tau, r, s, h = 25000.0, np.array([24000.0, 25000.0, 26500.0]), 0.05, 0.065, 0.15, 1.0
    for is_call in (True, False):
        g = black76.greeks(is_call, f, k, tau, r, s)
        p = lambda ff, tt=tau, c=is_call: black76.price(c, ff, k, tt, r, s)  # noqa: E731
        np.testing.assert_allclose(g["delta"], (p(f + h) - p(f - h)) / (2 * h), rtol=1e-6)
        gamma = (p(f + 10 * h) - 2 * p(f) + p(f - 10 * h)) / (10 * h) ** 2
        np.testing.assert_allclose(g["gamma"], gamma, rtol=1e-4)
        day = 1 / 365
        theta = (p(f, tau - day / 100) - p(f, tau)) * 100  # one day's decay, forward fixed
        np.testing.assert_allclose(g["theta"], theta, rtol=1e-3)
        assert (g["theta"] < 0).all()
    calls = black76.greeks(True, f, k, tau, r, s)
    puts = black76.greeks(False, f, k, tau, r, s)
    np.testing.assert_allclose(calls["delta"] - puts["delta"], math.exp(-r * tau), rtol=1e-12)


def test_greeks_are_nan_without_a_volatility() -> None:
    g = black76.greeks(
        True, 25000.0, 25000.0, np.array([0.05, 0.0, 0.05]), 0.065, [np.nan, 0.2, 0.2]
    )
    assert g.iloc[:2].isna().all().all()
    assert g.iloc[2].notna().all()
