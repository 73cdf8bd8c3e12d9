"""A whole export: manifest (selection, rows, checksums, source), file naming, and nothing left
behind by a refused or interrupted export."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from expirytrack_dagster.exports.formats import WriteOptions
from expirytrack_dagster.exports.run import export
from expirytrack_dagster.exports.selection import ExportError, Selection
from expirytrack_dagster_tests.exports.conftest import build_export_database


def test_manifest_lists_every_file_with_rows_and_checksum(
    export_database: Path, tmp_path: Path
) -> None:
    result = export(
        Selection(("NIFTY",), interval="5minute"), "csv", tmp_path / "out", database=export_database
    )
    manifest = json.loads(result.manifest_path.read_text())
    assert result.manifest_path.name == "_manifest.json"
    assert manifest["synthetic"] is True and manifest["data_source"] == "sandbox"
    assert "SYNTHETIC" in manifest["note"]
    assert manifest["interval"] == "5minute" and manifest["format"] == "csv"
    assert manifest["selection"]["underlyings"] == ["NIFTY"]
    for entry in manifest["files"]:
        path = tmp_path / "out" / entry["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        assert entry["rows"] == len(path.read_text().splitlines()) - 1
    assert manifest["rows"] == sum(f["rows"] for f in manifest["files"])


def test_real_data_exports_carry_no_synthetic_marker(tmp_path: Path) -> None:
    database = build_export_database(tmp_path / "real.duckdb", source="upstox")
    result = export(
        Selection(("NIFTY",), interval="day"), "parquet", tmp_path / "out", database=database
    )
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["synthetic"] is False and manifest["data_source"] == "upstox"
    assert all("SYNTHETIC" not in f.path.name for f in result.manifest.files)


def test_an_existing_directory_with_files_is_refused(export_database: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="not an empty directory"):
        export(Selection(("NIFTY",)), "csv", out, database=export_database)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_an_interrupted_export_leaves_nothing(export_database: Path, tmp_path: Path) -> None:
    written = []

    def progress(rows: int) -> None:
        written.append(rows)
        if len(written) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export(
            Selection(("NIFTY",)),
            "metatrader5",
            tmp_path / "out",
            database=export_database,
            progress=progress,
        )
    assert list(tmp_path.iterdir()) == []


def test_a_missing_database_is_named(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="no database at"):
        export(Selection(("NIFTY",)), "csv", tmp_path / "out", database=tmp_path / "none.duckdb")


def test_the_same_selection_exports_identical_files(export_database: Path, tmp_path: Path) -> None:
    # Reproducible: a checksum in one manifest identifies the same data in another (gzip too).
    options = WriteOptions(gzip=True)
    selection = Selection(("NIFTY",), interval="day")
    first = export(selection, "csv", tmp_path / "a", database=export_database, options=options)
    second = export(selection, "csv", tmp_path / "b", database=export_database, options=options)
    assert first.manifest.files[0].sha256 == second.manifest.files[0].sha256
