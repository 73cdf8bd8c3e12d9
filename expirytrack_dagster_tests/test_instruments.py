"""Watched underlyings: defaults, user additions from the settings file, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from expirytrack_dagster.instruments import (
    DEFAULT_UNDERLYINGS,
    load_user_config,
    underlying_for,
    watched_underlyings,
)


def test_defaults_are_the_seven_indices() -> None:
    symbols = [u.symbol for u in watched_underlyings({})]
    assert symbols == [
        "NIFTY",
        "BANKNIFTY",
        "FINNIFTY",
        "MIDCPNIFTY",
        "NIFTYNXT50",
        "SENSEX",
        "BANKEX",
    ]
    assert underlying_for("NIFTY", {}).instrument_key == "NSE_INDEX|Nifty 50"
    assert len(DEFAULT_UNDERLYINGS) == 7


def test_user_adds_a_stock_in_the_settings_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = tmp_path / "expirytrack.yaml"
    settings.write_text(
        'underlyings:\n  - symbol: RELIANCE\n    instrument_key: "NSE_EQ|INE002A01018"\n'
    )
    monkeypatch.setenv("EXPIRYTRACK_CONFIG", str(settings))
    config = load_user_config()
    assert underlying_for("RELIANCE", config).instrument_key == "NSE_EQ|INE002A01018"
    assert len(watched_underlyings(config)) == 8


def test_unknown_symbol_names_the_choices_and_the_file() -> None:
    with pytest.raises(KeyError, match="add it under 'underlyings:'"):
        underlying_for("TCS", {})


@pytest.mark.parametrize(
    "entry",
    [
        {"symbol": "TCS"},
        {"instrument_key": "NSE_EQ|INE467B01029"},
        {"symbol": "tcs", "instrument_key": "x"},
    ],
)
def test_bad_entries_are_refused(entry: dict) -> None:
    with pytest.raises(ValueError):
        watched_underlyings({"underlyings": [entry]})
