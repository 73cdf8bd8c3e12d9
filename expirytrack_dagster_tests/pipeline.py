"""A real pipeline for tests: the sandbox, a temporary DuckDB file and an in-memory Dagster instance."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from dagster import DagsterInstance, materialize

from expirytrack_dagster.assets import candles, contracts, expiries
from expirytrack_dagster.instruments import watched_underlyings
from expirytrack_dagster.partitions import build_partition_key, expiry_partitions
from expirytrack_dagster.resources import UpstoxApi, UpstoxResource
from expirytrack_dagster.sandbox import DEFAULT_PROFILES, Sandbox, SandboxConfig, run_sandbox
from expirytrack_dagster.sandbox_resource import SandboxResource
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster.storage.database import connect
from expirytrack_dagster.storage.io_manager import ExpiryTrackIOManager

ASSETS = [expiries, contracts, candles]


@dataclass
class Pipeline:
    """Everything a pipeline test needs, rooted in one temporary directory."""

    root: Path
    sandbox: Sandbox
    instance: DagsterInstance
    collection: CollectionSettings

    @property
    def database(self) -> Path:
        return Path(self.collection.database)

    def upstox(self, **overrides: Any) -> UpstoxApi:
        """The sandbox resource aimed at this pipeline's sandbox; with ``source="upstox"`` the
        real-Upstox resource (token auth) aimed at it instead, without the sandbox's fields."""
        fields: dict[str, Any] = {
            "sandbox_url": self.sandbox.base_url,
            "sandbox_token": self.sandbox.access_token,
            "ca_cert_path": str(self.sandbox.ca_cert_path) if self.sandbox.ca_cert_path else None,
            "state_dir": str(self.root / "state"),
            "retry_base_delay_s": 0.01,
            "max_attempts": 3,
            "circuit_min_failing_s": 0.5,
            # Rate limiting has its own tests; here the sandbox enforces none (see sandbox_config).
            "per_second": 100_000,
            "per_minute": 1_000_000,
            "per_30_minutes": 10_000_000,
        }
        fields.update(overrides)
        if fields.pop("source", "sandbox") == "upstox":
            real = {k: v for k, v in fields.items() if k in UpstoxResource.model_fields}
            return UpstoxResource(source="upstox", **real)
        return SandboxResource(**fields)

    def resources(self, **upstox_overrides: Any) -> dict[str, Any]:
        return {
            "upstox": self.upstox(**upstox_overrides),
            "collection": self.collection,
            "io_manager": ExpiryTrackIOManager(database=str(self.database), schema="main"),
        }

    def partition(self, symbol: str, expiry: date) -> str:
        key = build_partition_key(symbol, expiry)
        self.instance.add_dynamic_partitions(expiry_partitions.name, [key])
        return key

    def materialize(
        self,
        key: str,
        *,
        selection: list | None = None,
        run_config: dict | None = None,
        raise_on_error: bool = True,
        **upstox_overrides: Any,
    ):
        return materialize(
            selection or ASSETS,
            partition_key=key,
            instance=self.instance,
            resources=self.resources(**upstox_overrides),
            run_config=run_config,
            raise_on_error=raise_on_error,
        )

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with connect(self.database, read_only=True) as db:
            return db.execute(sql, params or []).fetchall()

    def query_frame(self, sql: str, params: list | None = None) -> pd.DataFrame:
        with connect(self.database, read_only=True) as db:
            return db.execute(sql, params or []).fetchdf()

    def candle_requests(self) -> int:
        return int(self.sandbox.stats()["by_kind"].get("candles", 0))


RELIANCE_KEY = "NSE_EQ|INE002A01018"
STOCK_TODAY = date(2025, 10, 1)
SMALL_RELIANCE = replace(
    next(p for p in DEFAULT_PROFILES if p.symbol == "RELIANCE"), strike_step=60
)
"""RELIANCE with strikes 60 apart instead of 10: 25 contracts a month (August 2025) instead of 139.
A pipeline test proves the same on either; the smaller one collects in a fraction of the time."""
SMALL_NIFTY = replace(
    next(p for p in DEFAULT_PROFILES if p.symbol == "NIFTY"), max_strikes=5, weekly_max_strikes=5
)
"""NIFTY's calendar and prices with fewer strikes (a weekly of August 2025: 54 contracts instead
of 138): for tests that need an index (weekly expiries, no future on a weekly) but not its size."""
TINY_NIFTY = replace(SMALL_NIFTY, strike_step=500)
"""NIFTY's calendar and prices with strikes 500 apart: 8 strikes and 17 contracts (with the future)
in the monthly of 28 August 2025, about 100k candles over a month, instead of SMALL_NIFTY's 127
contracts: for tests of what is computed from a chain, not of its width."""


def watch_underlying(
    root: Path, monkeypatch: Any, symbol: str = "RELIANCE", instrument_key: str = RELIANCE_KEY
) -> Path:
    """Watch ``symbol`` the way a user adds one: an entry in the settings file named by
    EXPIRYTRACK_CONFIG (set through ``monkeypatch`` so it is undone after the test)."""
    path = root / "expirytrack.yaml"
    path.write_text(f'underlyings:\n  - symbol: {symbol}\n    instrument_key: "{instrument_key}"\n')
    monkeypatch.setenv("EXPIRYTRACK_CONFIG", str(path))
    return path


@contextmanager
def stock_pipeline(root: Path) -> Iterator[Pipeline]:
    """RELIANCE over one month (monthly expiries only, strikes 60 apart: 25 contracts):
    the small real partition most pipeline tests collect."""
    config = sandbox_config(seed=21, today=STOCK_TODAY, extra_profiles=(SMALL_RELIANCE,))
    with pipeline(root, config, lookback_months=1, underlyings=with_reliance()) as p:
        yield p


def watched() -> dict[str, str]:
    """The defaults and what the test's settings file adds (``watch_underlying``), symbol → key,
    as the definitions would load them."""
    return {u.symbol: u.instrument_key for u in watched_underlyings()}


def with_reliance() -> dict[str, str]:
    """The watched underlyings plus RELIANCE, as a settings file listing it would make them."""
    return {**watched(), "RELIANCE": RELIANCE_KEY}


def sandbox_config(**fields: Any) -> SandboxConfig:
    """A sandbox for pipeline tests: rate windows off unless a test asks for them."""
    fields.setdefault("per_second", None)
    fields.setdefault("per_minute", None)
    fields.setdefault("per_30_minutes", None)
    return SandboxConfig(**fields)


@contextmanager
def pipeline(
    root: Path, sandbox_config: SandboxConfig, *, served: bool = False, **collection: Any
) -> Iterator[Pipeline]:
    """Start a sandbox and an in-memory Dagster instance; yield a Pipeline; clean up.

    The instance is Dagster's ephemeral one (``DagsterInstance.ephemeral``, what ``materialize``
    uses by default): runs, events and dynamic partitions as on disk, without a SQLite file per
    run and a transaction per event (which cost most pipeline tests a third of their time). The
    tests whose subject is the stored instance (the CLI, backfills, the daemon, the production
    profile) use on-disk instances of their own.

    The sandbox runs in-process (its ASGI app behind httpx's ASGI transport: same endpoints,
    faults and counters, no socket); ``served=True`` serves it over TLS and HTTP/2 on loopback
    instead, for the tests whose subject is the wire.
    """
    fields = {
        "database": str(root / "expirytrack.duckdb"),
        "landing_dir": str(root / "landing"),
        "underlyings": watched(),
        **collection,
    }
    with (
        run_sandbox(sandbox_config, in_process=not served) as sb,
        DagsterInstance.ephemeral() as instance,
    ):
        yield Pipeline(root, sb, instance, CollectionSettings(**fields))


def column_types(database: Path, table: str) -> dict[str, str]:
    with duckdb.connect(str(database), read_only=True) as db:
        rows = db.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ?", [table]
        ).fetchall()
    return dict(rows)
