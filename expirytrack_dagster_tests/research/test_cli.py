"""``expirytrack chain`` and ``expirytrack oi`` in-process on the collected sandbox partition."""

from __future__ import annotations

import re

import pytest

from expirytrack_dagster.cli import main
from expirytrack_dagster.research import api
from expirytrack_dagster_tests.research.conftest import Collected

AT = "2025-08-14 10:30"


def test_chain_prints_the_classic_layout(
    collected: Collected, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["chain", "NIFTY", "2025-08-28", "--at", AT, "--database",
                 str(collected.database), "--strikes", "2"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    chain = api.option_chain("NIFTY", "2025-08-28", AT, database=collected.database)
    lines = out.splitlines()
    assert lines[0].startswith("NIFTY 2025-08-28 at 2025-08-14 10:30 IST")
    assert f"forward {chain.attrs['forward']:,.2f}" in lines[0]
    assert f"max pain {chain.attrs['max_pain']:,.0f}" in lines[1]
    assert f"PCR OI {chain.attrs['pcr_oi']:.2f}" in lines[1]
    assert f"ATM IV {100 * chain.attrs['atm_iv']:.2f}%" in lines[1]
    assert "CALLS (CE)" in lines[2] and "PUTS (PE)" in lines[2]
    assert re.search(r"OI\s+OI chg\s+Volume\s+IV\s+LTP \|\s+Strike\s+\|\s+LTP\s+IV", lines[3])
    rows = lines[4:]
    assert len(rows) == 5  # the ATM strike and two either side
    atm = chain.attrs["atm_strike"]
    marked = [r for r in rows if f"> {atm:,.0f} <" in r]
    assert len(marked) == 1 and rows.index(marked[0]) == 2
    ce_oi = chain.loc[chain["is_atm"], "CE_oi"].item()
    pe_ltp = chain.loc[chain["is_atm"], "PE_ltp"].item()
    assert marked[0].split()[0] == f"{ce_oi:,.0f}"
    assert f"{pe_ltp:,.2f}" in marked[0].split("|")[2]


def test_oi_prints_the_tracker(collected: Collected, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["oi", "NIFTY", "2025-08-28", "--at", AT, "--database", str(collected.database),
                 "--strikes", "1"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    tracker = api.oi_tracker(
        "NIFTY", "2025-08-28", AT, strikes_around_atm=1, database=collected.database
    )
    lines = out.splitlines()
    header = lines[2].split()
    assert header[:3] == ["Strike", "Type", "OI"]
    assert re.findall(r"(\d+)m chg", lines[2]) == ["3", "5", "10", "15", "30"]
    assert re.findall(r"(\d+)m %", lines[2]) == ["3", "5", "10", "15", "30"]
    rows = lines[3:-1]
    assert len(rows) == len(tracker) == 6  # three strikes, CE and PE
    first = tracker.iloc[0]
    assert rows[0].split()[:3] == [f"{first['strike']:,.0f}", "CE", f"{first['oi']:,.0f}"]
    assert f"{first['oi_chg_30m']:+,.0f}" in rows[0]
    assert sum("*" in r.split()[1] for r in rows) == 2  # the ATM strike's two legs


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["chain", "NIFTY", "2025-08-21", "--at", AT], "NIFTY_2025-08-21 is not collected"),
        (["chain", "NIFTY", "2025-08-28", "--at", "2025-08-15 10:30"], "not a trading day"),
        (["oi", "NIFTY", "2025-08-28", "--at", "2025-08-14 08:00"], "outside the session"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    collected: Collected, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code = main([*argv, "--database", str(collected.database)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.count("\n") == 1 and message in captured.err
    assert captured.err.startswith(f"expirytrack {argv[0]}: error: ")


def test_the_database_comes_from_the_settings(
    collected: Collected, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPIRYTRACK_DATABASE", str(collected.database))
    assert main(["chain", "NIFTY", "2025-08-28", "--at", AT, "--strikes", "0"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5
