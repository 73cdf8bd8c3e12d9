"""The AmiBroker export: an ASCII import file and the matching import format definition.

``<stem>.txt`` holds one line per bar — ticker, date, time, open, high, low, close, volume,
open interest — after a one-line header; ``<stem>.format`` is AmiBroker's import definition for
it (File → Import ASCII, or copy it into AmiBroker's ``Formats`` folder and list it in
``import.types``)::

    $FORMAT Ticker,Date_YMD,Time,Open,High,Low,Close,Volume,OpenInt
    $SKIPLINES 1
    $SEPARATOR ,
    $CONT 1
    $GROUP 255
    $AUTOADD 1
    $DEBUG 1

Dates are ``YYYY-MM-DD`` and times ``HH:MM:SS`` in IST, the bar's opening minute (AmiBroker's
default "start time of interval" timestamps). Tickers follow ``exports.tickers``: unique per
contract, expiry included, so two expiries' same strike never merge into one symbol.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from expirytrack_dagster.exports.contract_runs import contract_runs, ist_text
from expirytrack_dagster.exports.formats import Progress, WriteOptions
from expirytrack_dagster.exports.rows import ExportedFile, RowSource, exported

FIELDS = ("Ticker", "Date_YMD", "Time", "Open", "High", "Low", "Close", "Volume", "OpenInt")
FORMAT_DEFINITION = "\n".join(
    [
        f"$FORMAT {','.join(FIELDS)}",
        "$SKIPLINES 1",
        "$SEPARATOR ,",
        "$CONT 1",
        "$GROUP 255",
        "$AUTOADD 1",
        "$DEBUG 1",
        "",
    ]
)
_SCHEMA = pa.schema(
    [(name, pa.string()) for name in FIELDS[:3]]
    + [(name, pa.float64()) for name in FIELDS[3:7]]
    + [(name, pa.int64()) for name in FIELDS[7:]]
)
_OPTIONS = pacsv.WriteOptions(include_header=False, quoting_style="none")


def write(
    source: RowSource,
    directory: Path,
    *,
    stem: str,
    options: WriteOptions,
    progress: Progress,
) -> list[ExportedFile]:
    """Write ``<stem>.txt`` and ``<stem>.format`` under ``directory``."""
    data = directory / f"{stem}.txt"
    definition = directory / f"{stem}.format"
    rows = 0
    with data.open("wb") as handle:
        handle.write((",".join(FIELDS) + "\n").encode())
        with pacsv.CSVWriter(handle, _SCHEMA, write_options=_OPTIONS) as out:
            for run in contract_runs(source.batches()):
                batch = run.rows
                stamps = batch.column("timestamp")
                out.write_batch(
                    pa.RecordBatch.from_arrays(
                        [
                            pa.array([run.ticker] * batch.num_rows, pa.string()),
                            ist_text(stamps, "%Y-%m-%d"),
                            ist_text(stamps, "%H:%M:%S"),
                            *(batch.column(name) for name in ("open", "high", "low", "close")),
                            batch.column("volume"),
                            pc.cast(batch.column("open_interest"), pa.int64()),
                        ],
                        schema=_SCHEMA,
                    )
                )
                rows += batch.num_rows
                progress(batch.num_rows)
    definition.write_text(FORMAT_DEFINITION)
    return [exported(data, rows), exported(definition, 0)]
