"""The expiries asset: monthly is decided by the API's futures, not by the calendar."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from expirytrack_dagster.assets import expiries
from expirytrack_dagster_tests.pipeline import pipeline, sandbox_config

NIFTY = "NSE_INDEX|Nifty 50"


def test_weekly_that_is_last_listed_in_the_current_month_is_not_monthly(tmp_path: Path) -> None:
    # On 15 Aug 2025 the 14 Aug weekly is the last August expiry Upstox lists; the monthly
    # (28 Aug) has not happened yet. A "last listed in its month" rule calls it monthly.
    with pipeline(tmp_path, sandbox_config(seed=21, today=date(2025, 8, 15))) as p:
        august = [d for d in p.sandbox.market.expiries(NIFTY) if (d.year, d.month) == (2025, 8)]
        weekly = max(august)
        assert not p.sandbox.market.is_monthly(NIFTY, weekly)
        key = p.partition("NIFTY", weekly)
        assert p.materialize(key, selection=[expiries]).success
        p.sandbox.set_today(date(2025, 10, 1))
        monthly = max(d for d in p.sandbox.market.expiries(NIFTY) if (d.year, d.month) == (2025, 8))
        monthly_key = p.partition("NIFTY", monthly)
        assert p.materialize(monthly_key, selection=[expiries]).success
        rows = p.query("SELECT partition_key, is_monthly FROM expiries ORDER BY expiry")
    assert rows == [(key, False), (monthly_key, True)]
