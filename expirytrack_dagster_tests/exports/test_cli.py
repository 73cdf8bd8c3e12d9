"""``expirytrack export`` as a user runs it: flags in, files and a summary out, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from expirytrack_dagster.cli import main
from expirytrack_dagster_tests.exports.conftest import WEEKLY


def test_export_writes_the_selection_and_prints_a_summary(
    export_database: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "export",
            "--format", "csv",
            "--underlying", "nifty",
            "--weekly",
            "--type", "CE,PE",
            "--strikes", "24400:24500",
            "--start", "2025-08-14",
            "--interval", "15minute",
            "--per-contract",
            "--database", str(export_database),
            "--out", str(out),
        ]
    )  # fmt: skip
    printed = capsys.readouterr()
    assert code == 0, printed.err
    manifest = json.loads((out / "_manifest.json").read_text())
    assert printed.out.splitlines() == [
        f"Exported {manifest['rows']:,} rows (csv, 15minute) in 4 file(s) to {out} in "
        + printed.out.split(" in ")[-1].splitlines()[0],
        f"Manifest: {out / '_manifest.json'}",
    ]
    assert "SYNTHETIC" in printed.out
    frames = [pd.read_csv(out / f["path"]) for f in manifest["files"]]
    rows = pd.concat(frames)
    assert set(rows["expiry"]) == {WEEKLY.isoformat()}
    assert set(rows["strike"]) == {24400, 24500} and set(rows["instrument_type"]) == {"CE", "PE"}
    assert rows["timestamp"].str.startswith("2025-08-14T").all()
    assert manifest["selection"]["expiry_kind"] == "weekly"
    assert manifest["selection"]["strike_min"] == 24400


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--underlying", "SENSEX"], "no collected partition of SENSEX"),
        (["--underlying", "NIFTY", "--atm", "2"], "needs the reference minute (--at)"),
        (["--underlying", "NIFTY", "--type", "XX"], "contract types XX"),
        (["--underlying", "NIFTY", "--start", "yesterday"], "give dates (YYYY-MM-DD)"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    export_database: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    message: str,
) -> None:
    argv = ["export", "--format", "parquet", *flags, "--database", str(export_database)]
    code = main([*argv, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("expirytrack export: error: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_bad_strike_range_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "export",
                "--format",
                "csv",
                "--underlying",
                "NIFTY",
                "--strikes",
                "24000",
                "--out",
                "x",
            ]
        )
    assert exit_.value.code == 2
    assert "is not a strike range: use LOW:HIGH" in capsys.readouterr().err
