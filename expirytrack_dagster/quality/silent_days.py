"""Silent option days: a session the underlying traded in, but no near-money option of the partition did.

Near-the-money index options trade every session they are listed, many times a minute. A day on
which the underlying traded (the partition's future had candles; a weekly partition has no
future, and the index trades every session) but not one near-money option has a candle is a
collection defect — a request cut short or a day lost — not a market fact.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from expirytrack_dagster.quality._frames import KEY
from expirytrack_dagster.quality.result import Verdict, percent, top_rows
from expirytrack_dagster.quality.settings import QualitySettings


def check_silent_option_days(
    days: pd.DataFrame, settings: QualitySettings | None = None
) -> Verdict:
    """ERROR when, on a day the underlying traded, no near-the-money option traded.

    Judged from the first day any option of the partition traded through expiry, on the days
    the partition's future traded (every session of that span for a weekly partition without
    one). ``near`` is the day grid's moneyness (contract_days.py) against that day's reference
    price; a day without any traded option has no reference price and counts as silent.
    """
    settings = settings or QualitySettings()
    options = days[days["instrument_type"].isin(("CE", "PE"))]
    futures = days[days["instrument_type"] == "FUT"]
    traded_options = options[options["stored_candles"] > 0]
    counts = {"options": int(options[KEY].nunique()), "days_judged": 0, "silent_days": 0}
    if options.empty or traded_options.empty:
        passed = options.empty
        counts["silent_days"] = int(options["trading_date"].nunique()) if not passed else 0
        return Verdict(
            passed=passed,
            description=_DESCRIPTION,
            counts=counts,
            metrics={"silent_days_pct": 100.0 if not passed else 0.0},
        )
    first = traded_options["trading_date"].min()
    window = np.sort(days.loc[days["trading_date"] >= first, "trading_date"].unique())
    if not futures.empty:
        traded = set(futures.loc[futures["stored_candles"] > 0, "trading_date"])
        window = np.array([d for d in window if d in traded], dtype=object)
    near = options[(options["moneyness"] == "near") & (options["stored_candles"] > 0)]
    per_day = near.groupby("trading_date")[KEY].nunique()
    judged = pd.DataFrame({"trading_date": window})
    judged["near_options_traded"] = (
        judged["trading_date"].map(per_day).fillna(0).astype("int64").to_numpy()
    )
    judged["options_traded"] = (
        judged["trading_date"]
        .map(traded_options.groupby("trading_date")[KEY].nunique())
        .fillna(0)
        .astype("int64")
        .to_numpy()
    )
    silent = judged[judged["near_options_traded"] == 0]
    counts["days_judged"] = len(judged)
    counts["silent_days"] = len(silent)
    return Verdict(
        passed=silent.empty,
        description=_DESCRIPTION,
        counts=counts,
        metrics={"silent_days_pct": percent(len(silent), len(judged))},
        samples=top_rows(silent, settings.sample_rows),
    )


_DESCRIPTION = (
    "on every session the underlying traded, near-the-money options of the partition traded too"
)
