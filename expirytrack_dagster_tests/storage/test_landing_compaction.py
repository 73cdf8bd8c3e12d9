"""Landing compaction: one zstd file per complete partition, read exactly as per-contract files."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, date, datetime

import pandas as pd
import pyarrow.parquet as pq

from expirytrack_dagster.storage.landing import COMPACTED_NAME, CandleLanding, DayRecord

KEY = "NIFTY_2025-08-28"
CONTRACTS = [f"NSE_FO|{n}|28-08-2025" for n in (41000, 41001, 41002)]
DAYS = [date(2025, 8, 26), date(2025, 8, 27), date(2025, 8, 28)]
AT = datetime(2025, 8, 29, 10, 0, tzinfo=UTC)


def candles(seed: int) -> pd.DataFrame:
    stamps = pd.concat(
        [
            pd.Series(pd.date_range(f"{d} 09:15", periods=375, freq="1min", tz="Asia/Kolkata"))
            for d in DAYS[:2]
        ]
    )
    n = len(stamps)
    base = 100 + seed + (pd.Series(range(n)) % 17) * 0.05
    return pd.DataFrame(
        {
            "timestamp": stamps.to_numpy(),
            "open": base.to_numpy(),
            "high": (base + 0.1).to_numpy(),
            "low": (base - 0.1).to_numpy(),
            "close": base.to_numpy(),
            "volume": [75 * (i % 9) for i in range(n)],
            "open_interest": [150_000 + i for i in range(n)],
        }
    )


def land(landing: CandleLanding) -> dict:
    days = {
        DAYS[0]: DayRecord("complete", 30, None, AT),
        DAYS[1]: DayRecord("complete", 30, None, AT),
        DAYS[2]: DayRecord("no_trades", 30, None, AT),
    }
    for seed, key in enumerate(CONTRACTS):
        landing.save(KEY, key, candles(seed), days)
    return days


def snapshot(landing: CandleLanding) -> dict:
    out = {}
    for key in CONTRACTS:
        landed = landing.load(KEY, key, DAYS)
        out[key] = (
            dict(landed.days),
            landed.candle_count,
            landing.candles_per_day(landed),
            landing.candles(landed).to_dict("list"),
        )
    return out


def test_compacted_partition_reads_like_per_contract_files(tmp_path) -> None:
    landing = CandleLanding(tmp_path, "1minute")
    land(landing)
    before = snapshot(landing)
    rows = sum(pq.read_metadata(p).num_rows for p in landing.files(KEY))
    per_contract_bytes = sum(p.stat().st_size for p in landing.files(KEY))

    landing.compact(KEY, CONTRACTS)
    assert [p.name for p in landing.files(KEY)] == [COMPACTED_NAME]
    assert pq.read_metadata(landing.files(KEY)[0]).num_rows == rows
    assert landing.files(KEY)[0].stat().st_size < per_contract_bytes
    assert landing.contract_keys(KEY) == sorted(CONTRACTS)
    assert snapshot(CandleLanding(tmp_path, "1minute")) == before  # a fresh reader too


def _ordered_by_contract_then_time(path) -> bool:
    frame = pq.read_table(path, columns=["expired_instrument_key", "timestamp"]).to_pandas()
    return frame.equals(
        frame.sort_values(["expired_instrument_key", "timestamp"]).reset_index(drop=True)
    )


def test_compacted_rows_are_by_contract_then_time_at_once_or_in_two_goes(tmp_path) -> None:
    at_once = CandleLanding(tmp_path / "once", "1minute")
    land(at_once)
    at_once.compact(KEY, CONTRACTS[::-1])  # asked in any order
    assert _ordered_by_contract_then_time(at_once.compacted_path(KEY))
    in_two = CandleLanding(tmp_path / "two", "1minute")
    land(in_two)
    in_two.compact(KEY, [CONTRACTS[2]])
    in_two.compact(KEY, CONTRACTS[:2])  # merged into the file that holds the last contract
    assert _ordered_by_contract_then_time(in_two.compacted_path(KEY))
    assert pq.read_table(in_two.compacted_path(KEY)).equals(
        pq.read_table(at_once.compacted_path(KEY))
    )


def test_saving_a_contract_again_moves_it_out_of_the_compacted_file(tmp_path) -> None:
    landing = CandleLanding(tmp_path, "1minute")
    days = land(landing)
    landing.compact(KEY, CONTRACTS)
    fresh = candles(7)
    landing.save(KEY, CONTRACTS[1], fresh, days)
    names = sorted(p.name for p in landing.files(KEY))
    assert names == sorted([COMPACTED_NAME, "NSE_FO__41001__28-08-2025.parquet"])
    keys = pq.read_table(landing.compacted_path(KEY), columns=["expired_instrument_key"])
    assert set(keys.column(0).to_pylist()) == {CONTRACTS[0], CONTRACTS[2]}
    landed = landing.load(KEY, CONTRACTS[1], DAYS)
    assert landing.candles(landed)["open"].tolist() == fresh["open"].tolist()


def test_a_compaction_interrupted_before_removing_files_is_finished(tmp_path) -> None:
    landing = CandleLanding(tmp_path, "1minute")
    land(landing)
    before = snapshot(landing)
    kept = tmp_path / "kept.parquet"
    original = landing.files(KEY)[0]
    shutil.copy2(original, kept)
    landing.compact(KEY, CONTRACTS)
    shutil.copy2(kept, original)  # as if the crash came before this file was removed
    old = landing.compacted_path(KEY).stat().st_mtime_ns - 1_000_000_000
    os.utime(original, ns=(old, old))
    reader = CandleLanding(tmp_path, "1minute")
    assert [p.name for p in reader.files(KEY)] == [COMPACTED_NAME]
    assert snapshot(reader) == before


def test_contracts_saved_again_from_many_threads_each_keep_their_own_candles(tmp_path) -> None:
    """Collection saves from worker threads; every save rewrites the one compacted file."""
    from concurrent.futures import ThreadPoolExecutor

    keys = [f"NSE_FO|{n}|28-08-2025" for n in range(42000, 42016)]
    landing = CandleLanding(tmp_path, "1minute")
    days = {d: DayRecord("complete", 30, None, AT) for d in DAYS[:2]}
    for seed, key in enumerate(keys):
        landing.save(KEY, key, candles(seed), days)
    landing.compact(KEY, keys)

    def save_again(seed_key: tuple[int, str]) -> None:
        seed, key = seed_key
        landing.save(KEY, key, candles(100 + seed), days)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(save_again, enumerate(keys)))

    fresh = CandleLanding(tmp_path, "1minute")  # read back as a new run would, no cached state
    for seed, key in enumerate(keys):
        landed = fresh.load(KEY, key, DAYS)
        got = fresh.candles(landed).reset_index(drop=True)
        assert got["open"].tolist() == candles(100 + seed)["open"].tolist(), key
    assert not fresh.is_compacted(KEY)  # every contract left the compacted file
