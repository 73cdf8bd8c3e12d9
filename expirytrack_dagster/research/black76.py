"""Black-76 on the forward, vectorised: prices, a solved implied volatility, and the greeks.

The model: a European option on a forward (or future) ``F`` with strike ``K``, ``tau`` years to
expiry, continuously compounded ``rate`` and volatility ``sigma`` is worth
``e^{-rate·tau} · (F·N(d1) − K·N(d2))`` (call) or ``e^{-rate·tau} · (K·N(−d2) − F·N(−d1))`` (put),
with ``d1 = (ln(F/K) + sigma²·tau/2) / (sigma·√tau)`` and ``d2 = d1 − sigma·√tau``.

The normal CDF is accurate to double precision without scipy: scipy is not a dependency of this
project (pandas needs only numpy, and numpy has no ``erf``), and ``math.erf`` element by element is
~100× too slow for a million option-minutes. :func:`norm_cdf` is Hart's double-precision rational
approximation (algorithm 5666, as given by G. West, "Better approximations to cumulative normal
functions", 2005): absolute error below 1e-15 everywhere, relative error below 1e-12 for
``|x| < 4`` (and below 1e-8 further out, where the value is under 3e-5), checked against
``math.erfc`` in the tests. (The sandbox's own CDF is a 1e-7 approximation; that difference is
far below a price tick.)

Every function takes arrays (or scalars) that broadcast together and is a few numpy passes; no
Python loop runs per option. ``is_call`` is a boolean array or scalar.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

_SQRT_2PI = 2.5066282746310002
_DAYS_PER_YEAR = 365.0
_VOL_POINT = 0.01

IV_TOLERANCE = 1e-10
"""The solver stops when the model price is within this many rupees of the quote (or 1e-14 of
the price, for prices so large that double precision cannot do better), or when the bracket on
``sigma·√tau`` is narrower than 1e-12."""
MAX_TOTAL_VOL = 20.0
"""Upper end of the bracket for ``sigma·√tau`` (2000 % a year over a year): no quote needs more."""


def norm_pdf(x: ArrayLike) -> np.ndarray:
    """Standard normal density."""
    x = np.asarray(x, dtype=float)
    return np.exp(-0.5 * x * x) / _SQRT_2PI


def norm_cdf(x: ArrayLike) -> np.ndarray:
    """Standard normal CDF (Hart 5666; absolute error < 1e-15), vectorised."""
    x = np.asarray(x, dtype=float)
    z = np.abs(x)
    e = np.exp(-0.5 * z * z)
    num = 3.52624965998911e-02 * z + 0.700383064443688
    num = num * z + 6.37396220353165
    num = num * z + 33.912866078383
    num = num * z + 112.079291497871
    num = num * z + 221.213596169931
    num = num * z + 220.206867912376
    den = 8.83883476483184e-02 * z + 1.75566716318264
    den = den * z + 16.064177579207
    den = den * z + 86.7807322029461
    den = den * z + 296.564248779674
    den = den * z + 637.333633378831
    den = den * z + 793.826512519948
    den = den * z + 440.413735824752
    near = e * num / den
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = z + 0.65
        frac = z + 4.0 / frac
        frac = z + 3.0 / frac
        frac = z + 2.0 / frac
        frac = z + 1.0 / frac
        far = e / frac / _SQRT_2PI
    tail = np.where(z < 7.07106781186547, near, np.where(z < 38.5, far, 0.0))
    return np.where(x > 0, 1.0 - tail, tail)


def _d1_d2(
    forward: np.ndarray, strike: np.ndarray, total_vol: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = np.log(forward / strike) / total_vol + 0.5 * total_vol
    return d1, d1 - total_vol


def _undiscounted(
    is_call: np.ndarray, forward: np.ndarray, strike: np.ndarray, total_vol: np.ndarray
) -> np.ndarray:
    d1, d2 = _d1_d2(forward, strike, total_vol)
    sign = np.where(is_call, 1.0, -1.0)
    return sign * (forward * norm_cdf(sign * d1) - strike * norm_cdf(sign * d2))


def price(
    is_call: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    tau: ArrayLike,
    rate: ArrayLike,
    sigma: ArrayLike,
) -> np.ndarray:
    """Black-76 premium (rupees). At ``tau <= 0`` or ``sigma <= 0``: the (discounted) intrinsic."""
    is_call, forward, strike, tau, rate, sigma = np.broadcast_arrays(
        np.asarray(is_call, dtype=bool),
        *(np.asarray(a, dtype=float) for a in (forward, strike, tau, rate, sigma)),
    )
    live = (tau > 0) & (sigma > 0)
    total_vol = np.where(live, sigma * np.sqrt(np.where(live, tau, 1.0)), 1.0)
    intrinsic = np.where(
        is_call, np.maximum(forward - strike, 0.0), np.maximum(strike - forward, 0.0)
    )
    value = np.where(live, _undiscounted(is_call, forward, strike, total_vol), intrinsic)
    return np.exp(-rate * np.maximum(tau, 0.0)) * value


def implied_vol(
    price: ArrayLike,
    is_call: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    tau: ArrayLike,
    rate: ArrayLike,
) -> np.ndarray:
    """The ``sigma`` at which :func:`price` equals ``price``, solved (not approximated).

    Safeguarded Newton on the total volatility ``s = sigma·√tau``: each option keeps a bracket
    ``[lo, hi]`` that holds the root (the price rises with ``s``), takes the Newton step when it
    stays inside the bracket and bisects otherwise, so it always converges; stops at a price error
    of :data:`IV_TOLERANCE` rupees. The solve runs on the out-of-the-money leg's price (parity).
    NaN where no volatility fits: ``tau <= 0``, non-finite or non-positive input, a price at or
    below the discounted intrinsic value (plus 1e-11 of the strike), or at or above the
    discounted upper bound (the forward for a call, the strike for a put).
    """
    quote, forward, strike, tau, rate = (
        np.asarray(a, dtype=float) for a in (price, forward, strike, tau, rate)
    )
    is_call, quote, forward, strike, tau, rate = np.broadcast_arrays(
        np.asarray(is_call, dtype=bool), quote, forward, strike, tau, rate
    )
    shape = quote.shape
    is_call, quote, forward, strike, tau, rate = (
        a.ravel() for a in (is_call, quote, forward, strike, tau, rate)
    )
    result = np.full(quote.shape, np.nan)
    finite = np.isfinite(quote) & np.isfinite(forward) & np.isfinite(strike)
    finite &= np.isfinite(tau) & np.isfinite(rate)
    ok = finite & (tau > 0) & (forward > 0) & (strike > 0) & (quote > 0)
    with np.errstate(invalid="ignore", over="ignore"):
        target = quote * np.exp(rate * tau)  # undiscounted
    intrinsic = np.where(
        is_call, np.maximum(forward - strike, 0.0), np.maximum(strike - forward, 0.0)
    )
    upper = np.where(is_call, forward, strike)
    tiny = 1e-11 * np.maximum(forward, strike)
    ok &= (target > intrinsic + tiny) & (target < upper)
    idx = np.flatnonzero(ok)
    if idx.size:
        # Solve on the out-of-the-money leg (same volatility by put-call parity): an in-the-money
        # price is mostly intrinsic value, whose rounding would swamp the volatility.
        otm_call = strike[idx] >= forward[idx]
        time_value = target[idx] - intrinsic[idx]
        total_vol = _solve(otm_call, forward[idx], strike[idx], time_value)
        result[idx] = total_vol / np.sqrt(tau[idx])
    return result.reshape(shape)


def _solve(
    is_call: np.ndarray, forward: np.ndarray, strike: np.ndarray, target: np.ndarray
) -> np.ndarray:
    """Total volatility matching undiscounted out-of-the-money ``target`` prices (all > 0)."""
    lo = np.zeros_like(target)
    hi = np.full_like(target, MAX_TOTAL_VOL)
    # Newton runs on ln(price), which is concave in s: from the left of the root every step stays
    # left of it and converges quadratically (no slow crawl up the exponential tail of a deep
    # out-of-the-money price); from the right one step crosses back. The start is Corrado and
    # Miller's closed-form approximation (on the call of the same strike, by parity).
    call = target + np.where(is_call, 0.0, forward - strike)
    half_gap = 0.5 * (forward - strike)
    root = np.sqrt(np.maximum((call - half_gap) ** 2 - (forward - strike) ** 2 / np.pi, 0.0))
    guess = np.sqrt(2.0 * np.pi) / (forward + strike) * (call - half_gap + root)
    s = np.clip(np.nan_to_num(guess, nan=0.1), 1e-3, MAX_TOTAL_VOL / 2)
    active = np.arange(target.size)
    out = np.empty_like(target)
    for _ in range(200):
        c, f, k, t = is_call[active], forward[active], strike[active], target[active]
        sa = s[active]
        model = _undiscounted(c, f, k, sa)
        diff = model - t
        d1, _ = _d1_d2(f, k, sa)
        vega = f * norm_pdf(d1)  # d(price)/d(s)
        la, ha = lo[active], hi[active]
        la = np.where(diff < 0, sa, la)
        ha = np.where(diff > 0, sa, ha)
        done = (np.abs(diff) <= np.maximum(IV_TOLERANCE, 1e-14 * t)) | (ha - la < 1e-12)
        out[active[done]] = sa[done]
        with np.errstate(divide="ignore", invalid="ignore"):
            step = sa - np.log(model / t) * model / vega
        inside = np.isfinite(step) & (step > la) & (step < ha)
        nxt = np.where(inside, step, 0.5 * (la + ha))
        keep = ~done
        active, s_next = active[keep], nxt[keep]
        lo[active], hi[active], s[active] = la[keep], ha[keep], s_next
        if not active.size:
            break
    out[active] = s[active]
    return out


def greeks(
    is_call: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    tau: ArrayLike,
    rate: ArrayLike,
    sigma: ArrayLike,
) -> pd.DataFrame:
    """Black-76 greeks, one row per option (NaN where ``tau <= 0`` or ``sigma`` is not > 0).

    Columns: ``delta`` (d price / d forward), ``gamma`` (d delta / d forward, per rupee),
    ``theta`` (change in rupees over one calendar day, forward and vol unchanged; usually
    negative), ``vega`` (change in rupees for one volatility point, sigma + 0.01).
    """
    is_call, forward, strike, tau, rate, sigma = np.broadcast_arrays(
        np.asarray(is_call, dtype=bool),
        *(np.asarray(a, dtype=float) for a in (forward, strike, tau, rate, sigma)),
    )
    live = (tau > 0) & (sigma > 0) & np.isfinite(sigma)
    sqrt_tau = np.sqrt(np.where(live, tau, np.nan))
    total_vol = sigma * sqrt_tau
    d1, _ = _d1_d2(forward, strike, total_vol)
    discount = np.exp(-rate * tau)
    density = norm_pdf(d1)
    delta = discount * np.where(is_call, norm_cdf(d1), norm_cdf(d1) - 1.0)
    gamma = discount * density / (forward * total_vol)
    value = price(is_call, forward, strike, tau, rate, sigma)
    theta_year = rate * value - discount * forward * density * sigma / (2.0 * sqrt_tau)
    vega = discount * forward * density * sqrt_tau
    columns = {
        "delta": delta,
        "gamma": gamma,
        "theta": theta_year / _DAYS_PER_YEAR,
        "vega": vega * _VOL_POINT,
    }
    return pd.DataFrame({k: np.where(live, v, np.nan).ravel() for k, v in columns.items()})
