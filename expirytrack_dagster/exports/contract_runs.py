"""Cutting the ordered row stream into per-contract runs (per-contract files, tickers)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from expirytrack_dagster.exports.rows import Batches
from expirytrack_dagster.exports.tickers import ticker


@dataclass(frozen=True)
class Run:
    """Consecutive rows of one contract within one batch; ``first`` when the contract starts here."""

    rows: pa.RecordBatch
    ticker: str
    instrument_key: str
    first: bool


def contract_runs(batches: Batches) -> Iterator[Run]:
    """Each batch cut where the instrument key changes (the stream keeps a contract's rows
    together, possibly across batches)."""
    previous: str | None = None
    for batch in batches:
        if batch.num_rows == 0:
            continue
        keys = batch.column("instrument_key")
        changed = pc.not_equal(keys.slice(1), keys.slice(0, len(keys) - 1))
        starts = np.r_[0, np.flatnonzero(changed.to_numpy(zero_copy_only=False)) + 1]
        ends = np.r_[starts[1:], batch.num_rows]
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            rows = batch.slice(start, end - start)
            key = keys[start].as_py()
            yield Run(rows, ticker_of(rows), key, key != previous)
            previous = key


def ticker_of(rows: pa.RecordBatch) -> str:
    """The ticker of the contract of the run's first row."""
    first = rows.slice(0, 1).to_pylist()[0]
    return ticker(
        first["underlying"],
        first["expiry"],
        first["instrument_type"],
        first["strike"],
        bool(first["weekly"]),
    )
