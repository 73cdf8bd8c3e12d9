"""The explorer in headless Chromium (Debian's, driven by Playwright): what a person sees."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from expirytrack_dagster import research
from expirytrack_dagster.explorer.data import contracts_of
from expirytrack_dagster.explorer.server import running
from expirytrack_dagster_tests.explorer.conftest import EXPIRY, Collected

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AT = "2025-08-21 11:07"

if not CHROMIUM.exists() and shutil.which("chromium") is None:
    pytest.fail(
        "Debian's chromium is missing: apt-get install -y --no-install-recommends chromium "
        "(.ci/run installs it)",
        pytrace=False,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="install the dev extra")


@pytest.fixture(scope="module")
def site(collected: Collected) -> Iterator[str]:
    with running(collected.database) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: sync_api.Browser) -> Iterator[sync_api.Page]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    page.close()
    assert errors == [], f"console errors: {errors}"


def _chain_strikes(page: sync_api.Page) -> list[float]:
    return [
        float(s)
        for s in page.locator("#chain tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.strike)"
        )
    ]


def test_chain_rows_atm_marker_and_slider(
    site: str, page: sync_api.Page, collected: Collected
) -> None:
    page.goto(f"{site}/chain?underlying=NIFTY&expiry={EXPIRY}&at={AT}")
    chain = research.option_chain("NIFTY", EXPIRY, AT, database=collected.database)
    assert _chain_strikes(page) == chain["strike"].tolist()
    atm = page.locator("#chain tr.atm")
    assert atm.count() == 1
    assert float(atm.get_attribute("data-strike")) == chain.attrs["atm_strike"]
    sync_api.expect(page.locator("#atm-marker")).to_have_text("ATM")
    sync_api.expect(page.locator("#synthetic-banner")).to_be_visible()
    ce_oi = page.locator("#chain tbody tr").evaluate_all("rows => rows.map(r => r.dataset.ceOi)")
    assert [float(v) for v in ce_oi] == chain["CE_oi"].astype(float).tolist()
    before = page.locator("#chain tbody").inner_text()
    slider = page.locator("#minute")
    slider.evaluate("s => { s.value = 300; s.dispatchEvent(new Event('change')); }")
    page.wait_for_url("**at=2025-08-21+14%3A15*")
    assert "14:15 IST" in page.locator("h1").inner_text()
    assert page.locator("#chain tbody").inner_text() != before
    later = research.option_chain("NIFTY", EXPIRY, "2025-08-21 14:15", database=collected.database)
    ce_oi = page.locator("#chain tbody tr").evaluate_all("rows => rows.map(r => r.dataset.ceOi)")
    assert [float(v) for v in ce_oi] == later["CE_oi"].astype(float).tolist()
    page.locator("#chain tr.atm a.leg").first.click()  # the ATM call's LTP opens its chart
    page.wait_for_url("**/chart?contract=*")
    atm = later.attrs["atm_strike"]
    assert page.locator("h1").inner_text().startswith(f"NIFTY {atm:.0f} CE")
    sync_api.expect(page.locator("nav a", has_text="Option chain")).to_be_visible()


def test_contract_chart_draws_candles_on_a_canvas(
    site: str, page: sync_api.Page, collected: Collected
) -> None:
    with research.open_database(collected.database) as db:
        key = next(c for c in contracts_of(db, "NIFTY_2025-08-28") if c["type"] == "CE")["key"]
    page.goto(f"{site}/chart?contract={key}&interval=5minute&overlay=1")
    canvases = page.locator("#price-chart canvas")
    sync_api.expect(canvases.first).to_be_visible()
    # Pixels drawn: the chart canvas is not blank.
    inked = page.evaluate(
        """() => Math.max(...[...document.querySelectorAll('#price-chart canvas')].map(c => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }))"""
    )
    assert inked > 1000
    bars = research.candles(key, "5minute", database=collected.database)
    assert page.locator("#bar-count").inner_text() == f"{len(bars)} bars"
    assert page.locator("#oi-chart canvas").count() > 0


def test_oi_analysis_heatmap_tracker_and_coverage(site: str, page: sync_api.Page) -> None:
    page.goto(f"{site}/oi?underlying=NIFTY&expiry={EXPIRY}&at={AT}")
    cells = page.locator("#heatmap td.cell")
    assert cells.count() > 20
    coloured = cells.evaluate_all("cs => cs.filter(c => c.style.background.includes('rgb')).length")
    assert coloured == cells.count()
    assert page.locator("#oi-bars tr.atm").count() == 1
    assert page.locator("#life-chart canvas").count() > 0
    assert page.locator("#build-up tr").count() > 1
    page.goto(f"{site}/tracker?underlying=NIFTY&expiry={EXPIRY}&at={AT}&strikes=1")
    assert page.locator("#tracker tr.atm").count() == 2  # its CE and PE
    page.goto(f"{site}/coverage")
    link = page.locator("#coverage a", has_text=str(EXPIRY))
    link.first.click()
    page.wait_for_url("**/chain?underlying=NIFTY*")
    assert page.locator("#chain tr.atm").count() == 1


def test_live_tracker_shows_the_captured_session(
    live_dir: Path, tmp_path: Path, page: sync_api.Page
) -> None:
    (tmp_path / "live").symlink_to(live_dir, target_is_directory=True)
    with running(tmp_path / "expirytrack.duckdb") as url:
        page.goto(f"{url}/tracker?underlying=NIFTY&mode=live&at=2026-11-20 10:35&strikes=2")
        assert page.locator("h1").inner_text().endswith("live at 2026-11-20 10:35 IST")
        assert page.locator("#tracker tr.atm").count() == 2
        assert page.locator("#tracker tr").count() == 1 + 2 * 5
        assert "max pain" in page.locator("#live-header").inner_text()
        page.fill("input[name=at]", "2026-11-20 10:10")
        page.click("button")
        page.wait_for_url("**at=2026-11-20+10%3A10**")
        assert page.locator("h1").inner_text().endswith("live at 2026-11-20 10:10 IST")
