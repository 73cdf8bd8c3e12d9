"""Option pricing for the synthetic market: Black-76 off the future, with a volatility smile."""

from __future__ import annotations

import numpy as np

RISK_FREE_RATE = 0.065
"""Annual rate used for futures carry and option discounting (roughly India's repo-linked rates)."""

_SQRT2 = np.sqrt(2.0)


def norm_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF (Abramowitz-Stegun 7.1.26, |error| < 1.5e-7; numpy has no erf)."""
    z = np.abs(x) / _SQRT2
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    erf = 1.0 - poly * np.exp(-z * z)
    return 0.5 * (1.0 + np.sign(x) * erf)


def smile_iv(strike: float, forward: np.ndarray, tau: np.ndarray, atm_iv: float) -> np.ndarray:
    """Implied volatility by moneyness: lowest near the money, higher on both wings, more on puts.

    Moneyness is measured in at-the-money standard deviations, so the smile steepens into expiry
    the way listed Indian index options do.
    """
    tau_eff = np.maximum(tau, 2.0 / 365.0)
    w = np.log(strike / forward) / (atm_iv * np.sqrt(tau_eff))
    factor = 1.0 + 0.07 * w * w - 0.05 * w
    return atm_iv * np.clip(factor, 0.75, 3.0)


def black76(
    is_call: bool, forward: np.ndarray, strike: float, tau: np.ndarray, iv: np.ndarray
) -> np.ndarray:
    """Black-76 premium of a European option on ``forward``; ``tau`` in years."""
    tau = np.maximum(tau, 1e-8)
    vol_sqrt = iv * np.sqrt(tau)
    d1 = (np.log(forward / strike) + 0.5 * vol_sqrt * vol_sqrt) / vol_sqrt
    d2 = d1 - vol_sqrt
    discount = np.exp(-RISK_FREE_RATE * tau)
    if is_call:
        return discount * (forward * norm_cdf(d1) - strike * norm_cdf(d2))
    return discount * (strike * norm_cdf(-d2) - forward * norm_cdf(-d1))


def to_ticks(prices: np.ndarray, tick_paise: int) -> np.ndarray:
    """Prices in rupees rounded to the tick, as integer paise, never below one tick."""
    paise = np.rint(prices * (100.0 / tick_paise)).astype(np.int64) * tick_paise
    return np.maximum(paise, tick_paise)
