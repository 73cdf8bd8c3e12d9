"""Screenshots of every explorer page for the README (run once; not a test).

Collects NIFTY 2025-08-28 (the tests' sandbox calendar, strikes 100 apart) into a temporary
database, serves the explorer over it and saves one PNG per page under ``docs/explorer/`` with
Debian's headless Chromium::

    .venv/bin/python -m expirytrack_dagster_tests.explorer.screenshots
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from datetime import date
from pathlib import Path

from dagster import materialize
from playwright.sync_api import sync_playwright

from expirytrack_dagster import research
from expirytrack_dagster.assets.coverage import coverage_report
from expirytrack_dagster.explorer.data import contracts_of
from expirytrack_dagster.explorer.server import running
from expirytrack_dagster_tests.explorer.test_browser import CHROMIUM, CHROMIUM_ARGS
from expirytrack_dagster_tests.pipeline import SMALL_NIFTY, pipeline, sandbox_config

EXPIRY = date(2025, 8, 28)
AT = "2025-08-21 11:07"
OUT = Path(__file__).resolve().parents[2] / "docs" / "explorer"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    nifty = replace(SMALL_NIFTY, strike_step=100)
    with tempfile.TemporaryDirectory(prefix="explorer_shots_") as tmp:
        config = sandbox_config(seed=21, today=date(2025, 9, 1), extra_profiles=(nifty,))
        with pipeline(Path(tmp), config, lookback_months=1) as p:
            assert p.materialize(p.partition("NIFTY", EXPIRY)).success
            report = materialize([coverage_report], instance=p.instance, resources=p.resources())
            assert report.success
            database = p.database
        with research.open_database(database) as db:
            chain = research.option_chain("NIFTY", EXPIRY, AT, database=db)
            atm = chain.attrs["atm_strike"]
            call = next(
                c["key"]
                for c in contracts_of(db, "NIFTY_2025-08-28")
                if c["type"] == "CE" and f" {atm:.0f} " in c["symbol"]
            )
        pages = {
            "chain": f"/chain?underlying=NIFTY&expiry={EXPIRY}&at={AT}",
            "chart": f"/chart?contract={call}&interval=15minute&overlay=1",
            "oi": f"/oi?underlying=NIFTY&expiry={EXPIRY}&at={AT}",
            "tracker": f"/tracker?underlying=NIFTY&expiry={EXPIRY}&at={AT}&strikes=3",
            "coverage": "/coverage",
        }
        with running(database) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            for name, path in pages.items():
                page.goto(url + path)
                page.wait_for_timeout(300)
                page.screenshot(path=str(OUT / f"{name}.png"))
                print(OUT / f"{name}.png")
            browser.close()


if __name__ == "__main__":
    main()
