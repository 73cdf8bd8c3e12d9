"""The partition key codec: round trips, and clear errors for everything else."""

from __future__ import annotations

from datetime import date

import pytest

from expirytrack_dagster.partitions import (
    PartitionKey,
    build_partition_key,
    parse_partition_key,
    split_partition_keys,
    validate_symbol,
)


@pytest.mark.parametrize(
    ("symbol", "expiry", "key"),
    [
        ("NIFTY", date(2025, 8, 28), "NIFTY_2025-08-28"),
        ("NIFTYNXT50", date(2024, 12, 26), "NIFTYNXT50_2024-12-26"),
        ("BAJAJ-AUTO", date(2025, 1, 30), "BAJAJ-AUTO_2025-01-30"),
    ],
)
def test_round_trip(symbol: str, expiry: date, key: str) -> None:
    assert build_partition_key(symbol, expiry) == key
    assert parse_partition_key(key) == PartitionKey(symbol, expiry)


@pytest.mark.parametrize(
    "key",
    [
        "NIFTY-2025-08-28",
        "nifty_2025-08-28",
        "NIFTY_2025-8-28",
        "NIFTY_2025-08-28...NIFTY_2025-09-02",
        "NIFTY,BANKNIFTY_2025-08-28",
        "NIFTY_2025-02-30",
        "_2025-08-28",
        "NIFTY_",
    ],
)
def test_bad_keys_are_rejected_with_the_format_named(key: str) -> None:
    with pytest.raises(ValueError, match=r"SYMBOL_YYYY-MM-DD|impossible date"):
        parse_partition_key(key)


@pytest.mark.parametrize("symbol", ["nifty", "NIFTY 50", "M&M", "A|B", "X...Y", ""])
def test_symbols_that_would_break_keys_are_refused(symbol: str) -> None:
    with pytest.raises(ValueError, match="upper-case letters"):
        validate_symbol(symbol)


def test_keys_avoid_dagster_separators() -> None:
    key = build_partition_key("MIDCPNIFTY", date(2024, 11, 18))
    assert not any(bad in key for bad in ("...", ",", "|", "[", "]"))
    assert key.isprintable()


def test_split_keeps_ours_and_sets_aside_foreign_keys() -> None:
    keys = ["NIFTY_2025-08-28", "nifty-test", "BANKEX_2025-09-30", "NIFTY_2025-02-30", ""]
    assert split_partition_keys(keys) == (
        ["NIFTY_2025-08-28", "BANKEX_2025-09-30"],
        ["nifty-test", "NIFTY_2025-02-30", ""],
    )
    assert split_partition_keys([]) == ([], [])
