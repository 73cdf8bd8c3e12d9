"""The synthetic forward from put-call parity, and the at-the-money strike nearest to it.

By put-call parity on the forward, ``C − P = e^{−rT}(F − K)`` for a call and put of the same
strike, so ``F = K + e^{rT}(C − P)``. Quotes near the money are the most liquid and the least
sensitive to a tick of rounding, so the forward is the median over the 1-3 strikes nearest the
money where both legs traded recently.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

STRIKES_USED = 3
"""At most this many strikes (nearest the money) enter the median."""


def synthetic_forward(
    chain: pd.DataFrame,
    rate: float,
    tau: float,
    max_age_minutes: int = 5,
    reference: float | None = None,
) -> float:
    """Forward implied by put-call parity at the strikes nearest the money; NaN if none qualifies.

    ``chain``: one row per option (long form) with columns ``strike``, ``option_type`` ('CE' or
    'PE'), ``close`` (last traded price) and ``age_minutes`` (minutes since that trade; NaN when
    it did not trade). A strike qualifies when both legs have a price no older than
    ``max_age_minutes``. "Nearest the money" is the smallest ``|strike − reference|`` when a
    reference level is given (e.g. the future), else the smallest ``|C − P|`` (the usual
    choice without one: the call and put are worth the same at the forward). The result is the
    median of ``K + e^{rate·tau}(C − P)`` over the :data:`STRIKES_USED` nearest qualifying strikes.
    """
    close = chain["close"].to_numpy(dtype=float)
    fresh = (chain["age_minutes"].to_numpy(dtype=float) <= max_age_minutes) & np.isfinite(close)
    strike = chain["strike"].to_numpy(dtype=float)
    side = chain["option_type"].to_numpy()
    calls, puts = fresh & (side == "CE"), fresh & (side == "PE")
    strikes, ci, pi = np.intersect1d(strike[calls], strike[puts], return_indices=True)
    if not strikes.size or not math.isfinite(tau):
        return math.nan
    gap = close[calls][ci] - close[puts][pi]
    distance = np.abs(strikes - reference) if reference is not None else np.abs(gap)
    nearest = np.argsort(distance, kind="stable")[:STRIKES_USED]
    return float(np.median(strikes[nearest] + math.exp(rate * tau) * gap[nearest]))


def atm_strike(strikes: Iterable[float], forward: float) -> float:
    """The listed strike nearest to ``forward`` (a tie goes to the lower strike); NaN if unknown."""
    listed = np.unique(np.asarray(list(strikes), dtype=float))
    listed = listed[np.isfinite(listed)]
    if not listed.size or not math.isfinite(forward):
        return math.nan
    return float(listed[np.argmin(np.abs(listed - forward))])
