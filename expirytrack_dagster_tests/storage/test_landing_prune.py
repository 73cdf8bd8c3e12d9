"""Landing prune: candle files go, every day record stays; a crash leaves files or a pruned state."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from expirytrack_dagster.collection import fetch_status, pending_days
from expirytrack_dagster.storage.landing import (
    COMPACTED_NAME,
    PRUNED_NAME,
    CandleLanding,
    DayRecord,
    PartitionPruned,
)

REPO = Path(__file__).resolve().parents[2]
KEY = "NIFTY_2025-08-28"
CONTRACTS = [f"NSE_FO|{n}|28-08-2025" for n in (41000, 41001, 41002)]
DAYS = [date(2025, 8, 26), date(2025, 8, 27), date(2025, 8, 28)]
AT = datetime(2025, 8, 29, 10, 0, tzinfo=UTC)
PRUNED_AT = datetime(2025, 9, 1, 12, 0, tzinfo=UTC)


def candles(seed: int, days: list[date]) -> pd.DataFrame:
    stamps = pd.concat(
        [
            pd.Series(pd.date_range(f"{d} 09:15", periods=375, freq="1min", tz="Asia/Kolkata"))
            for d in days
        ]
    )
    n = len(stamps)
    return pd.DataFrame(
        {
            "timestamp": stamps.to_numpy(),
            "open": [100.0 + seed + i % 7 for i in range(n)],
            "high": [101.0 + seed + i % 7 for i in range(n)],
            "low": [99.0 + seed + i % 7 for i in range(n)],
            "close": [100.5 + seed + i % 7 for i in range(n)],
            "volume": [75 * (i % 9) for i in range(n)],
            "open_interest": [150_000 + i for i in range(n)],
        }
    )


def land(root: Path, *, compact: bool) -> CandleLanding:
    """Three contracts: two traded two days (the third day no_trades), one never traded."""
    landing = CandleLanding(root, "1minute")
    for n, key in enumerate(CONTRACTS):
        traded = DAYS[:2] if n < 2 else []
        records = {
            d: DayRecord("complete" if d in traded else "no_trades", 31, None, AT) for d in DAYS
        }
        frame = candles(n, traded) if traded else candles(n, DAYS[:1]).iloc[:0]
        landing.save(KEY, key, frame, records, duplicates_collapsed=n)
    if compact:
        landing.compact(KEY, CONTRACTS)
    return landing


def snapshot(landing: CandleLanding) -> dict:
    """What a re-run reads of each contract: day records, counts, collapsed duplicates."""
    out = {}
    for key in CONTRACTS:
        landed = landing.load(KEY, key, DAYS)
        assert landed is not None
        out[key] = (
            dict(landed.days),
            landed.candle_count,
            landing.candles_per_day(landed),
            landed.duplicates_collapsed,
        )
    return out


@pytest.mark.parametrize("compact", [True, False], ids=["compacted", "per-contract"])
def test_a_pruned_partition_keeps_every_day_record_and_no_candle_file(
    tmp_path: Path, compact: bool
) -> None:
    landing = land(tmp_path, compact=compact)
    before = snapshot(landing)
    files = landing.fingerprint(KEY)
    assert (COMPACTED_NAME in files) is compact

    record = landing.prune(KEY, files, candle_rows=1500, checksum="12345", at=PRUNED_AT)

    assert [p.name for p in landing.partition_dir(KEY).iterdir()] == [PRUNED_NAME]
    assert record.partition_key == KEY and record.pruned_at == PRUNED_AT
    assert (record.candle_rows, record.checksum, record.contracts) == (1500, "12345", 3)
    assert record.landing_bytes == sum(size for size, _ in files.values())
    # A fresh reader (another process) sees the same records, all final: nothing to fetch.
    fresh = CandleLanding(tmp_path, "1minute")
    assert fresh.is_pruned(KEY) and fresh.pruned_partitions() == [KEY]
    assert snapshot(fresh) == before
    assert fresh.contract_keys(KEY) == CONTRACTS
    assert fresh.files(KEY) == []
    for key in CONTRACTS:
        landed = fresh.load(KEY, key, DAYS)
        assert landed is not None and landed.pruned
        assert pending_days(landed, DAYS) == []
        with pytest.raises(PartitionPruned, match="live only in the database"):
            fresh.candles(landed)
    with pytest.raises(PartitionPruned, match=f"expirytrack delete {KEY}"):
        fresh.save(KEY, CONTRACTS[0], candles(0, DAYS[:1]), {DAYS[0]: before[CONTRACTS[0]][0]})
    with pytest.raises(PartitionPruned, match="stage its candles for publishing"):
        fetch_status(fresh, KEY, CONTRACTS, DAYS[0], DAYS[-1])
    assert [p.name for p in fresh.partition_dir(KEY).iterdir()] == [PRUNED_NAME]


def test_a_prune_refuses_files_changed_since_they_were_verified(tmp_path: Path) -> None:
    landing = land(tmp_path, compact=False)
    verified = landing.fingerprint(KEY)
    records = snapshot(landing)[CONTRACTS[0]][0]
    landing.save(KEY, CONTRACTS[0], candles(9, DAYS[:2]), records)  # a run wrote since
    with pytest.raises(ValueError, match="changed since they were verified"):
        landing.prune(KEY, verified, candle_rows=1, checksum="1", at=PRUNED_AT)
    with pytest.raises(ValueError, match="changed since they were verified"):
        landing.prune(KEY, {}, candle_rows=1, checksum="1", at=PRUNED_AT)
    assert not landing.is_pruned(KEY)
    assert sorted(landing.fingerprint(KEY)) == sorted(verified)
    landed = landing.load(KEY, CONTRACTS[0], DAYS)
    assert landed is not None and len(landing.candles(landed)) == 2 * 375


CHILD = """
import contextlib, os, pathlib, signal, sys
from datetime import UTC, datetime
from expirytrack_dagster.storage import landing as module

root, key, stage = sys.argv[1:4]
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
if stage == "record":  # killed with the record written to its temporary name, not renamed
    write = module.atomic_write

    @contextlib.contextmanager
    def dying(path, **kwargs):
        with write(path, **kwargs) as handle:
            yield handle
            handle.flush()
            die()

    module.atomic_write = dying
else:  # killed right after the first candle file is removed
    unlink = pathlib.Path.unlink

    def dying_unlink(self, *args, **kwargs):
        unlink(self, *args, **kwargs)
        die()

    pathlib.Path.unlink = dying_unlink
landing = module.CandleLanding(root, "1minute")
landing.prune(key, landing.fingerprint(key), candle_rows=1500, checksum="1", at=datetime.now(UTC))
print("not killed")
"""


@pytest.mark.parametrize("stage", ["record", "unlink"])
def test_a_crash_mid_prune_leaves_the_files_or_a_pruned_partition(
    tmp_path: Path, stage: str
) -> None:
    landing = land(tmp_path, compact=False)
    before = snapshot(landing)
    frames = {k: landing.candles(landing.load(KEY, k, DAYS)) for k in CONTRACTS}
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILD), str(tmp_path), KEY, stage],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -9, child.stdout + child.stderr
    left = sorted(p.name for p in landing.partition_dir(KEY).iterdir())
    fresh = CandleLanding(tmp_path, "1minute")
    assert snapshot(fresh) == before
    if stage == "record":
        # The record never replaced anything: the partition is as it was, candles and all.
        assert not fresh.is_pruned(KEY)
        assert len([n for n in left if n.endswith(".parquet")]) == 3
        for key in CONTRACTS:
            pd.testing.assert_frame_equal(fresh.candles(fresh.load(KEY, key, DAYS)), frames[key])
    else:
        # The record is whole; the next reader removes the candle files the crash left.
        assert PRUNED_NAME in left and len([n for n in left if n.endswith(".parquet")]) == 2
        assert fresh.is_pruned(KEY) and fresh.files(KEY) == []
        assert [p.name for p in fresh.partition_dir(KEY).iterdir()] == [PRUNED_NAME]
