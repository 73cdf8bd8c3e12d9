"""The explorer's page data equals the research API's numbers; every page renders over HTTP."""

from __future__ import annotations

import math
import os
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from expirytrack_dagster import research
from expirytrack_dagster.explorer import data
from expirytrack_dagster.explorer.server import running
from expirytrack_dagster.research.history import expiry_life
from expirytrack_dagster_tests.explorer.conftest import EXPIRY, Collected

AT = "2025-08-21 11:07"


def test_chain_page_numbers_are_the_research_apis(collected: Collected) -> None:
    with research.open_database(collected.database) as db:
        page = data.chain_page(db, "NIFTY", EXPIRY.isoformat(), AT)
        chain = research.option_chain("NIFTY", EXPIRY, AT, database=db)
    assert page["at"] == AT
    assert [r["strike"] for r in page["rows"]] == chain["strike"].tolist()
    assert [r["atm"] for r in page["rows"]] == chain["is_atm"].tolist()
    for row, (_, expected) in zip(page["rows"], chain.iterrows(), strict=True):
        for side in ("CE", "PE"):
            for ours, theirs in (("oi", "oi"), ("ltp", "ltp"), ("iv", "iv")):
                value = expected[f"{side}_{theirs}"]
                got = row[side][ours]
                assert (got is None and math.isnan(value)) or got == value
    assert page["header"]["max_pain"] == chain.attrs["max_pain"]
    assert page["header"]["pcr_oi"] == chain.attrs["pcr_oi"]
    forward = chain.attrs["forward"]
    assert all(r["CE"]["itm"] == (r["strike"] < forward) for r in page["rows"])
    assert page["minute_index"] == 11 * 60 + 7 - (9 * 60 + 15)


def test_oi_tracker_and_chart_pages_match_the_api(collected: Collected) -> None:
    with research.open_database(collected.database) as db:
        oi = data.oi_page(db, "NIFTY", EXPIRY.isoformat(), AT)
        life = expiry_life("NIFTY", EXPIRY, database=db)
        tracker = data.tracker_page(db, "NIFTY", EXPIRY.isoformat(), AT, strikes=2)
        api_tracker = research.oi_tracker("NIFTY", EXPIRY, AT, strikes_around_atm=2, database=db)
        future = next(c for c in data.contracts_of(db, oi["partition_key"]) if c["type"] == "FUT")
        chart = data.chart_page(db, future["key"], "15minute")
        bars = research.candles(future["key"], "15minute", database=db)
    assert oi["max_pain"] == research.max_pain("NIFTY", EXPIRY, AT, database=collected.database)
    assert oi["life"]["day"][-1] == "2025-08-21"
    shown = life[life["day"].astype(str) <= "2025-08-21"]
    assert oi["life"]["max_pain"] == shown["max_pain"].tolist()
    assert oi["heat"] and len(oi["heat"][0]["cells"]) == len(oi["days"])
    assert [r["oi"] for r in tracker["rows"]] == api_tracker["oi"].astype(float).tolist()
    assert chart["series"]["bars"]["close"] == bars["close"].round(4).tolist()
    assert chart["count"] == len(bars)


@pytest.mark.parametrize(
    "path",
    [
        "/coverage",
        f"/chain?underlying=NIFTY&expiry={EXPIRY}&at={AT}",
        f"/oi?underlying=NIFTY&expiry={EXPIRY}",
        f"/tracker?underlying=NIFTY&expiry={EXPIRY}&at={AT}&strikes=1",
    ],
)
def test_pages_render_with_the_synthetic_banner(collected: Collected, path: str) -> None:
    with (
        running(collected.database) as url,
        urllib.request.urlopen(url + path.replace(" ", "%20"), timeout=30) as response,
    ):
        html = response.read().decode()
    assert response.status == 200
    assert "Synthetic data" in html


def test_a_bad_question_is_one_line_not_a_crash(collected: Collected) -> None:
    with running(collected.database) as url, pytest.raises(urllib.error.HTTPError) as failure:
        urllib.request.urlopen(f"{url}/chain?underlying=NIFTY&expiry=2025-07-31", timeout=30)
    assert failure.value.code == 400
    assert "not collected" in failure.value.read().decode()


def test_life_cache_keeps_a_partitions_history_until_the_file_changes(
    collected: Collected, tmp_path: Path
) -> None:
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(collected.database.read_bytes())
    cache = data.LifeCache(copy)
    with research.open_database(copy) as db:
        legs, _ = cache.get(db, "NIFTY", EXPIRY.isoformat())
        assert cache.get(db, "nifty", EXPIRY.isoformat())[0] is legs
        page = data.oi_page(db, "NIFTY", EXPIRY.isoformat(), AT, history=cache)
        assert page == data.oi_page(db, "NIFTY", EXPIRY.isoformat(), AT)
    stat = copy.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    with research.open_database(copy) as db:
        again, _ = cache.get(db, "NIFTY", EXPIRY.isoformat())
    assert again is not legs
    pd.testing.assert_frame_equal(again, legs)


def test_without_a_database_pages_say_how_to_collect_and_show_it_once_it_exists(
    collected: Collected, tmp_path: Path
) -> None:
    """``make dev`` starts the explorer before anything is collected: it serves, and picks the
    file up when the first partition lands (no restart)."""
    later = tmp_path / "later.duckdb"
    with running(later) as url:
        with pytest.raises(urllib.error.HTTPError) as failure:
            urllib.request.urlopen(f"{url}/coverage", timeout=30)
        assert failure.value.code == 503
        body = failure.value.read().decode()
        assert "no database yet" in body and "expirytrack demo" in body
        later.write_bytes(collected.database.read_bytes())
        html = urllib.request.urlopen(f"{url}/coverage", timeout=30).read().decode()
    assert f"NIFTY_{EXPIRY.isoformat()}" in html
