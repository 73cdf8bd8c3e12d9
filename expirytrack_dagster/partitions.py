"""The partition scheme: one partition per real (underlying, expiry) pair, e.g. ``NIFTY_2025-08-28``.

This module is the only place that builds or parses partition keys. Keys use ``[A-Za-z0-9-]`` for
the symbol and an ISO date, joined by ``_``, so they are readable, sort by date within an
underlying, and avoid the characters Dagster gives meaning to (``...`` ranges, ``,`` lists, ``|``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from dagster import DynamicPartitionsDefinition

PARTITIONS_NAME = "underlying_expiry"

expiry_partitions = DynamicPartitionsDefinition(name=PARTITIONS_NAME)
"""The dynamic partitions every asset and check shares; the new-expiry sensor adds keys to it."""

_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9-]*$")
_KEY = re.compile(r"^(?P<symbol>[A-Z0-9][A-Z0-9-]*)_(?P<expiry>\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True, order=True)
class PartitionKey:
    """A parsed partition: the underlying's symbol and the expiry date."""

    symbol: str
    expiry: date

    def __str__(self) -> str:
        return f"{self.symbol}_{self.expiry.isoformat()}"


def validate_symbol(symbol: str) -> str:
    """The symbol if it can stand in a partition key (upper-case letters, digits, ``-``)."""
    if not _SYMBOL.match(symbol):
        raise ValueError(
            f"underlying symbol {symbol!r} must be upper-case letters, digits or '-' "
            "(it becomes part of partition keys such as NIFTY_2025-08-28)"
        )
    return symbol


def build_partition_key(symbol: str, expiry: date) -> str:
    """``NIFTY`` + 2025-08-28 → ``NIFTY_2025-08-28``."""
    return str(PartitionKey(validate_symbol(symbol), expiry))


def parse_partition_key(key: str) -> PartitionKey:
    """``NIFTY_2025-08-28`` → PartitionKey("NIFTY", date(2025, 8, 28)); a clear error otherwise."""
    match = _KEY.match(key)
    if not match:
        raise ValueError(
            f"partition key {key!r} is not SYMBOL_YYYY-MM-DD (for example NIFTY_2025-08-28)"
        )
    try:
        expiry = date.fromisoformat(match["expiry"])
    except ValueError:
        raise ValueError(f"partition key {key!r} has an impossible date") from None
    return PartitionKey(match["symbol"], expiry)


def split_partition_keys(keys: Iterable[str]) -> tuple[list[str], list[str]]:
    """``(ours, foreign)``: the keys :func:`parse_partition_key` accepts, and all the others.

    A foreign key is one this project did not make, e.g. ``nifty-test`` typed into the Dagster
    UI's "Add a partition". Whatever lists the instance's partitions should work on ``ours`` and
    mention ``foreign`` once rather than fail on it. Both lists keep the input order.
    """
    ours: list[str] = []
    foreign: list[str] = []
    for key in keys:
        try:
            parse_partition_key(key)
        except ValueError:
            foreign.append(key)
        else:
            ours.append(key)
    return ours, foreign
