"""Uniqueness rules on hand-made candles and contracts."""

from __future__ import annotations

from expirytrack_dagster.quality import check_candle_uniqueness, check_contract_uniqueness
from expirytrack_dagster_tests.quality.frames import candles, contract, contracts, key

FUT = key(64103)
OPT = key(71706)


def bar(instrument_key: str, start: str, close: float = 100.0) -> tuple:
    return (instrument_key, start, close, close, close, close, 1, 1)


def test_same_time_on_different_contracts_is_not_a_duplicate() -> None:
    frame = candles([bar(FUT, "2025-08-01 09:15"), bar(OPT, "2025-08-01 09:15")])
    result = check_candle_uniqueness(frame)
    assert result.passed
    assert result.counts == {"rows": 2, "duplicate_rows": 0, "duplicated_candles": 0}
    assert result.samples is None


def test_duplicate_candles_are_counted_per_surplus_row_and_per_pair() -> None:
    frame = candles(
        [
            bar(FUT, "2025-08-01 09:15"),
            bar(FUT, "2025-08-01 09:15", 101.0),  # same pair, different prices: still a dupe
            bar(FUT, "2025-08-01 09:15"),
            bar(FUT, "2025-08-01 09:16"),
            bar(OPT, "2025-08-01 09:20"),
            bar(OPT, "2025-08-01 09:20"),
        ]
    )
    result = check_candle_uniqueness(frame)
    assert not result.passed
    assert result.counts == {"rows": 6, "duplicate_rows": 3, "duplicated_candles": 2}
    assert result.metrics["duplicate_pct"] == 50.0
    assert result.samples is not None
    assert len(result.samples) == 5  # every row of a repeated pair, up to sample_rows
    assert result.worst is not None
    assert result.worst.to_dict("records") == [
        {"expired_instrument_key": FUT, "duplicate_rows": 2},
        {"expired_instrument_key": OPT, "duplicate_rows": 1},
    ]


def test_contracts_listed_twice_are_flagged() -> None:
    listed = contracts(
        [
            contract(64103, "FUT"),
            contract(71706, "PE", 22600),
            contract(71706, "PE", 22600),
            contract(71707, "CE", 22600),
        ]
    )
    result = check_contract_uniqueness(listed)
    assert not result.passed
    assert result.counts == {"contracts": 4, "duplicate_rows": 1, "duplicated_keys": 1}
    assert result.samples is not None
    assert list(result.samples["expired_instrument_key"]) == [OPT, OPT]


def test_unique_contracts_pass() -> None:
    result = check_contract_uniqueness(contracts([contract(64103, "FUT")]))
    assert result.passed
    assert result.counts == {"contracts": 1, "duplicate_rows": 0, "duplicated_keys": 0}
