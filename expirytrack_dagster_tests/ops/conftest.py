"""A small real project for the operations commands: DuckDB file, landing zone, state, Dagster.

Built directly (no collection run): two RELIANCE partitions with candles in the database and in
landing files, fetch status in all four states, learned state files, the partitions in a real
Dagster instance with materialisations and one successful ``collect_expiry`` run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dagster import (
    AssetsDefinition,
    DagsterInstance,
    Definitions,
    asset,
    define_asset_job,
)

from expirytrack_dagster.partitions import PARTITIONS_NAME, expiry_partitions
from expirytrack_dagster.storage.database import connect
from expirytrack_dagster.storage.landing import CandleLanding, DayRecord
from expirytrack_dagster.upstox.limiter import RateLimits, SharedRateLimiter
from expirytrack_dagster_tests.cli_project import RELIANCE, REPO, call_main

KEYS = ("RELIANCE_2025-08-28", "RELIANCE_2025-09-30")
ASSETS = ("expiries", "contracts", "candles")
FETCHED = datetime(2025, 10, 1, 10, 0, tzinfo=UTC)


def _contract(key: str, n: int) -> str:
    return f"NSE_FO|{5000 + n}|{date.fromisoformat(key.split('_')[1]):%d-%m-%Y}"


def _candles(day: date, count: int, base: float) -> pd.DataFrame:
    start = pd.Timestamp(f"{day} 09:15", tz="Asia/Kolkata")
    stamps = pd.date_range(start, periods=count, freq="1min")
    return pd.DataFrame(
        {
            "timestamp": stamps,
            "open": base,
            "high": base + 1.5,
            "low": base - 1.0,
            "close": base + 0.5,
            "volume": range(100, 100 + count),
            "open_interest": 5000,
        }
    )


def build_store(root: Path) -> None:
    """Database, landing files and state for :data:`KEYS` under ``root``."""
    landing = CandleLanding(root / "landing", "1minute")
    days = [date(2025, 8, 1), date(2025, 8, 4)]
    status_rows, contracts, expiries = [], [], []
    frames = []
    for k, key in enumerate(KEYS):
        expiry = date.fromisoformat(key.split("_")[1])
        expiries.append((key, "RELIANCE", RELIANCE, expiry, True, "sandbox", FETCHED))
        for n, kind in enumerate(("FUT", "CE")):
            instrument = _contract(key, n + 10 * k)
            contracts.append(
                (
                    key,
                    instrument,
                    kind,
                    "RELIANCE",
                    RELIANCE,
                    expiry,
                    None if kind == "FUT" else 1400.0,
                    500,
                    10.0,
                    None,
                    f"RELIANCE{kind}{n}",
                    str(5000 + n),
                    "RELIANCE",
                    "NSE_FO",
                    "NSE",
                    "EQUITY",
                    10000,
                    500,
                )
            )
            traded = kind == "FUT"
            candles = pd.concat([_candles(d, 30, 1400 + k) for d in days]) if traded else None
            records = {
                d: DayRecord("complete" if traded else "no_trades", 92, None, FETCHED) for d in days
            }
            if kind == "CE":
                records[days[1]] = DayRecord("failed", None, "candles: 503", FETCHED)
            if candles is None:
                candles = _candles(days[0], 0, 0)
            landed = landing.save(key, instrument, candles, records)
            frames.append(pd.read_parquet(landed.path))
            for d, r in records.items():
                count = 30 if r.status == "complete" else 0
                status_rows.append((key, instrument, d, r.status, count, r.error, r.fetched_at))
        status_rows.append(
            (key, _contract(key, 10 * k), date(2025, 8, 5), "unconfirmed", 0, None, FETCHED)
        )
    candles = pd.concat(frames, ignore_index=True)
    with connect(root / "expirytrack.duckdb") as db:
        db.executemany("INSERT INTO expiries VALUES (?, ?, ?, ?, ?, ?, ?)", expiries)
        db.executemany(
            "INSERT INTO contracts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            contracts,
        )
        db.register("landed", candles)
        db.execute("INSERT INTO candles BY NAME SELECT * FROM landed")
        db.executemany("INSERT INTO candle_fetch_status VALUES (?, ?, ?, ?, ?, ?, ?)", status_rows)
    state = root / "state"
    limiter = SharedRateLimiter(state / "ratelimit" / "USER1.sqlite", RateLimits())
    for _ in range(3):
        limiter.acquire()
    limiter.close()
    (root / "expirytrack.yaml").write_text(
        f'underlyings:\n  - symbol: RELIANCE\n    instrument_key: "{RELIANCE}"\n'
        "collection:\n  lookback_months: 1\n  contract_types: [FUT, CE]\n"
    )


def _stand_in(name: str) -> AssetsDefinition:
    @asset(name=name, partitions_def=expiry_partitions)
    def _asset() -> None:
        """Stands in for the real asset: the run and its materialisation are what matter here."""

    return _asset


def build_instance(home: Path) -> None:
    """The partitions, and one successful ``collect_expiry`` run per partition materialising
    ``expiries``, ``contracts`` and ``candles`` (stand-ins) — real runs in a real instance."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "data" / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    job = define_asset_job("collect_expiry", selection=list(ASSETS))
    defs = Definitions(assets=[_stand_in(name) for name in ASSETS], jobs=[job])
    with DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions(PARTITIONS_NAME, list(KEYS))
        for key in KEYS:
            result = defs.resolve_job_def("collect_expiry").execute_in_process(
                instance=instance, partition_key=key
            )
            assert result.success


class Project:
    """A copy of the built project; ``run`` is ``expirytrack`` as a user runs it there."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.database = root / "expirytrack.duckdb"
        self.landing = root / "landing"
        self.state = root / "state"
        self.settings = root / "expirytrack.yaml"
        self.home = root / "dagster_home"

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **{
                k: v for k, v in os.environ.items() if not k.startswith(("UPSTOX_", "EXPIRYTRACK_"))
            },
            "DAGSTER_HOME": str(self.home),
            "EXPIRYTRACK_CONFIG": str(self.settings),
            "EXPIRYTRACK_DATABASE": str(self.database),
            "EXPIRYTRACK_LANDING_DIR": str(self.landing),
            "EXPIRYTRACK_STATE_DIR": str(self.state),
            "EXPIRYTRACK_CREDENTIALS_DIR": str(self.root / "credentials"),
            "EXPIRYTRACK_SOURCE": "sandbox",
            "PYTHONPATH": str(REPO),
            **extra,
        }

    def command(self, *argv: str) -> list[str]:
        return [sys.executable, "-m", "expirytrack_dagster.cli", *argv]

    def run(
        self, *argv: str, stdin: int | None = subprocess.DEVNULL, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*argv),
            env=self.env(**extra),
            cwd=self.root,
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def main(self, *argv: str, stdin: Any = None, **extra: str) -> subprocess.CompletedProcess[str]:
        """``expirytrack ARGV`` called in this process (no interpreter start or imports to pay):
        for commands whose subject is what they do and print, not how a process behaves."""
        return call_main(argv, self.env(**extra), self.root, stdin)

    def instance(self) -> DagsterInstance:
        return DagsterInstance.from_config(str(self.home))


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("built")
    build_store(root)
    build_instance(root / "dagster_home")
    return root


@pytest.fixture
def project(built: Path, tmp_path: Path) -> Project:
    """A fresh copy of the built project for one test."""
    root = tmp_path / "project"
    shutil.copytree(built, root)
    return Project(root)
