"""Synthetic and real data never share a store; damage and missing tokens stop a run before its
first request. Real Dagster runs against the sandbox on loopback (posing as Upstox for 'upstox')."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest
from dagster import materialize

from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster.storage.io_manager import ExpiryTrackIOManager
from expirytrack_dagster.storage.stores import (
    StoreError,
    check_database,
    check_stores,
    landing_source,
)
from expirytrack_dagster_tests.pipeline import (
    ASSETS,
    SMALL_RELIANCE,
    Pipeline,
    pipeline,
    sandbox_config,
    with_reliance,
)

EXPIRY = date(2025, 8, 28)
RELIANCE_KEY = "NSE_EQ|INE002A01018"
TOKEN = "real-looking-token-0123456789"


@pytest.fixture(autouse=True)
def settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Watch RELIANCE (a small partition) and keep credentials inside the test directory."""
    path = tmp_path / "expirytrack.yaml"
    path.write_text(f'underlyings:\n  - symbol: RELIANCE\n    instrument_key: "{RELIANCE_KEY}"\n')
    monkeypatch.setenv("EXPIRYTRACK_CONFIG", str(path))
    monkeypatch.setenv("EXPIRYTRACK_CREDENTIALS_DIR", str(tmp_path / "credentials"))
    monkeypatch.delenv("UPSTOX_ACCESS_TOKEN", raising=False)
    return path


@pytest.fixture
def stock(tmp_path: Path):
    # Served: the real-source run below connects over TLS to the sandbox posing as Upstox. The
    # subject is which store a run writes: the future alone proves it (24 options prove no more).
    config = sandbox_config(seed=21, today=date(2025, 10, 1), extra_profiles=(SMALL_RELIANCE,))
    with pipeline(
        tmp_path,
        config,
        served=True,
        lookback_months=1,
        contract_types=["FUT"],
        underlyings=with_reliance(),
    ) as p:
        p.sandbox.add_token(TOKEN)
        yield p


def run(p: Pipeline, key: str, root: Path, store_source: str, **upstox: object):
    """Materialise ``key`` into the stores under ``root``, marked ``store_source``."""
    resources = p.resources(**upstox)
    collection = CollectionSettings(
        database=str(root / "db.duckdb"),
        landing_dir=str(root / "landing"),
        lookback_months=p.collection.lookback_months,
        contract_types=p.collection.contract_types,
        underlyings=p.collection.underlyings,
    )
    resources["collection"] = collection
    resources["io_manager"] = ExpiryTrackIOManager(
        database=collection.database,
        schema="main",
        source=store_source,
        landing_dir=collection.landing_dir,
    )
    return materialize(
        ASSETS, partition_key=key, instance=p.instance, resources=resources, raise_on_error=False
    )


def as_upstox(p: Pipeline) -> dict:
    """The real-Upstox code path (token auth), aimed at the sandbox."""
    return {
        "source": "upstox",
        "base_url": p.sandbox.base_url,
        "access_token": TOKEN,
        "sandbox_token": None,
        "token_margin_minutes": 0,
    }


def failure_text(result) -> str:
    """What the run's failure events say (a resource that fails to start is one of them)."""
    return " ".join(
        f"{e.message} {e.event_specific_data}"
        for e in result.all_events
        if "FAILURE" in e.event_type_value
    )


def requests(p: Pipeline) -> int:
    return int(p.sandbox.stats()["total"])


def test_sandbox_and_real_runs_keep_separate_stores_and_refuse_each_other(
    stock: Pipeline, tmp_path: Path
) -> None:
    key = stock.partition("RELIANCE", EXPIRY)
    synthetic, real = tmp_path / "sandbox", tmp_path / "real"
    assert run(stock, key, synthetic, "sandbox").success
    assert run(stock, key, real, "upstox", **as_upstox(stock)).success
    assert landing_source(synthetic / "landing") == "sandbox"
    assert landing_source(real / "landing") == "upstox"
    for root, source in ((synthetic, "sandbox"), (real, "upstox")):
        with duckdb.connect(str(root / "db.duckdb"), read_only=True) as db:
            assert db.execute("SELECT source FROM store_source").fetchall() == [(source,)]
            assert db.execute("SELECT DISTINCT data_source FROM expiries").fetchall() == [(source,)]
            assert db.execute("SELECT count(*) FROM candles").fetchall()[0][0] > 0

    # A real run aimed at the synthetic store stops before its first request, and vice versa.
    before = requests(stock)
    crossed = run(stock, key, synthetic, "upstox", **as_upstox(stock))
    assert not crossed.success
    assert "holds synthetic sandbox data ('sandbox')" in failure_text(crossed)
    assert "will not mix them" in failure_text(crossed)
    crossed = run(stock, key, real, "sandbox")
    assert not crossed.success and "holds real Upstox data ('upstox')" in failure_text(crossed)
    assert requests(stock) == before


def test_a_run_without_a_token_fails_before_any_request_and_says_how_to_log_in(
    stock: Pipeline, tmp_path: Path
) -> None:
    key = stock.partition("RELIANCE", EXPIRY)
    stock.sandbox.reset_stats()
    result = run(
        stock, key, tmp_path / "real", "upstox", **{**as_upstox(stock), "access_token": None}
    )
    assert not result.success
    text = failure_text(result)
    assert "no Upstox access token is configured or stored" in text
    assert "expirytrack login" in text and "EXPIRYTRACK_SOURCE=sandbox" in text
    assert requests(stock) == 0
    assert not (tmp_path / "real" / "db.duckdb").exists()


def test_a_damaged_database_stops_the_run_before_any_request(
    stock: Pipeline, tmp_path: Path
) -> None:
    key = stock.partition("RELIANCE", EXPIRY)
    assert run(stock, key, tmp_path, "sandbox").success
    database = tmp_path / "db.duckdb"
    check_database(database, "sandbox")  # healthy
    with database.open("r+b") as f:  # garbage over the file header
        f.write(b"\xde\xad\xbe\xef" * 2048)
    stock.sandbox.reset_stats()
    result = run(stock, key, tmp_path, "sandbox")
    assert not result.success
    text = failure_text(result)
    assert f"the database {database} is damaged" in text and "expirytrack rebuild" in text
    assert requests(stock) == 0
    with pytest.raises(StoreError, match="nothing was requested"):
        check_stores(database, tmp_path / "landing", "sandbox")


def test_a_database_from_before_the_mark_is_judged_by_its_expiries(tmp_path: Path) -> None:
    database = tmp_path / "old.duckdb"
    with duckdb.connect(str(database)) as db:
        db.execute("CREATE TABLE expiries (partition_key VARCHAR, data_source VARCHAR)")
        db.execute("INSERT INTO expiries VALUES ('NIFTY_2025-08-28', 'sandbox')")
    check_database(database, "sandbox")
    with pytest.raises(StoreError, match="holds synthetic sandbox data"):
        check_database(database, "upstox")
    with duckdb.connect(str(database)) as db:
        db.execute("INSERT INTO expiries VALUES ('NIFTY_2025-09-25', 'upstox')")
    with pytest.raises(StoreError, match="holds both sandbox and upstox data"):
        check_database(database, "upstox")


def test_a_missing_database_is_a_new_one(tmp_path: Path) -> None:
    assert check_database(tmp_path / "none.duckdb", "upstox") == {}
