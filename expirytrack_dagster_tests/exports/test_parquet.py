"""Parquet: a hive-partitioned zstd dataset, read back by pandas, pyarrow and DuckDB row for row."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from expirytrack_dagster.exports.run import export
from expirytrack_dagster.exports.selection import Selection
from expirytrack_dagster_tests.exports.conftest import assert_same_rows, expected_rows

ORDER = ["underlying", "expiry", "instrument_type", "strike", "instrument_key", "timestamp"]


def _as_export(frame: pd.DataFrame, want: pd.DataFrame) -> pd.DataFrame:
    frame["underlying"] = frame["underlying"].astype(str)
    frame["expiry"] = pd.to_datetime(frame["expiry"].astype(str)).dt.date
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).dt.tz_convert("Asia/Kolkata")
    frame = frame[list(want.columns)]
    return frame.sort_values(ORDER, na_position="last").reset_index(drop=True)


def test_parquet_round_trip_with_every_reader(export_database: Path, tmp_path: Path) -> None:
    result = export(
        Selection(("NIFTY",), interval="10minute"),
        "parquet",
        tmp_path / "out",
        database=export_database,
    )
    want = expected_rows(export_database, "10minute")
    root = tmp_path / "out"
    dirs = sorted(p.relative_to(root).as_posix() for p in root.glob("underlying=*/expiry=*"))
    assert dirs == ["underlying=NIFTY/expiry=2025-08-14", "underlying=NIFTY/expiry=2025-08-28"]
    for file in result.manifest.files:
        meta = pq.ParquetFile(file.path).metadata
        assert meta.row_group(0).column(0).compression == "ZSTD"
        assert meta.num_rows == file.rows
        assert "SYNTHETIC" in file.path.name
        # Within a file: contract by contract (type, strike, key), each in time order.
        rows = pq.read_table(file.path).to_pandas()
        assert rows.equals(rows.sort_values(ORDER[2:], na_position="last", ignore_index=True))
    assert sum(f.rows for f in result.manifest.files) == len(want)

    read = pd.read_parquet(root)
    assert str(read["timestamp"].dt.tz) == "Asia/Kolkata"  # the zone travels in the file
    assert_same_rows(_as_export(read, want), want)
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    assert table.schema.field("timestamp").type.tz is not None
    assert_same_rows(_as_export(table.to_pandas(), want), want)
    with duckdb.connect() as db:
        frame = db.execute(
            f"SELECT * FROM read_parquet('{root}/**/*.parquet', hive_partitioning = true)"
        ).df()
    assert_same_rows(_as_export(frame, want), want)


def test_polars_reads_the_dataset_with_its_partition_columns(
    export_database: Path, tmp_path: Path
) -> None:
    import polars as pl

    export(
        Selection(("NIFTY",), interval="day"), "parquet", tmp_path / "out", database=export_database
    )
    frame = pl.scan_parquet(str(tmp_path / "out" / "**" / "*.parquet"), hive_partitioning=True)
    got = frame.collect().to_pandas()
    want = expected_rows(export_database, "day")
    assert_same_rows(_as_export(got, want), want)
