"""Each collected partition's Dagster metadata links to its explorer pages, and the links open."""

from __future__ import annotations

import urllib.request
from datetime import date
from pathlib import Path

import pytest

from expirytrack_dagster.explorer.links import PAGES, URL_VARIABLE, partition_links
from expirytrack_dagster.explorer.server import running
from expirytrack_dagster_tests.pipeline import stock_pipeline, watch_underlying

EXPIRY = date(2025, 8, 28)


def test_links_follow_the_configured_explorer_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(URL_VARIABLE, raising=False)
    links = partition_links("NIFTY_2025-08-28")
    assert links["explorer_chain"].value == (
        "http://127.0.0.1:8050/chain?underlying=NIFTY&expiry=2025-08-28"
    )
    monkeypatch.setenv(URL_VARIABLE, "https://desk.example:9000/explorer/")
    assert partition_links("M-M_2025-08-28")["explorer_oi"].value == (
        "https://desk.example:9000/explorer/oi?underlying=M-M&expiry=2025-08-28"
    )
    with pytest.raises(ValueError, match="SYMBOL_YYYY-MM-DD"):
        partition_links("NIFTY-2025-08-28")


def test_a_materialised_partition_links_to_pages_that_show_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch_underlying(tmp_path, monkeypatch)
    with stock_pipeline(tmp_path) as stock, running(stock.database) as url:
        monkeypatch.setenv(URL_VARIABLE, url)
        key = stock.partition("RELIANCE", EXPIRY)
        result = stock.materialize(key)
        meta = result.asset_materializations_for_node("candles")[0].metadata
        for name, page in PAGES.items():
            link = meta[name].value
            assert link.startswith(f"{url}/{page}?")
            with urllib.request.urlopen(link, timeout=60) as response:
                assert response.status == 200
                html = response.read().decode()
            assert "RELIANCE" in html and EXPIRY.isoformat() in html
