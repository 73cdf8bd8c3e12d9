"""The AmiBroker export: an ASCII import file and the matching import format definition.

``<stem>.txt`` holds one line per bar — ticker, date, time, open, high, low, close, volume,
open interest — after a one-line header; ``<stem>.format`` is the definition AmiBroker's ASCII
importer reads to parse it: copy it into AmiBroker's ``Formats`` folder, add the line
``ExpiryTrack (*.txt)|*.txt|<stem>.format`` to ``Formats/import.types`` and pick that type in
File → Import ASCII (from OLE automation: ``AB.Import(0, "<stem>.txt", "<stem>.format")``)::

    $FORMAT Ticker,Date_YMD,Time,Open,High,Low,Close,Volume,OpenInt
    $SKIPLINES 1
    $SEPARATOR ,
    $CONT 1
    $GROUP 255
    $AUTOADD 1
    $DEBUG 1

The commands are the ones AmiBroker's own Import Wizard writes: ``$FORMAT`` names the columns in
order, ``$SKIPLINES 1`` skips the header, ``$SEPARATOR ,`` splits fields, ``$AUTOADD 1`` creates
symbols that do not exist yet (in group ``$GROUP 255``, flagged continuous by ``$CONT 1``) and
``$DEBUG 1`` logs refused lines to ``import.log``. Dates are ``YYYY-MM-DD`` (``Date_YMD``: year,
month, day separated by ``-``) and times ``HH:MM:SS``, both IST, the bar's opening minute
(AmiBroker's default "start time of interval" time stamps); day bars carry the session's open,
09:15:00. Tickers follow ``exports.tickers``: unique per contract, expiry included, so two
expiries' same strike never merge into one symbol (a collision stops the export).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from expirytrack_dagster.exports.bar_text import ist_date_text, ist_time_text
from expirytrack_dagster.exports.contract_runs import contract_runs
from expirytrack_dagster.exports.formats import Progress, WriteOptions
from expirytrack_dagster.exports.rows import ExportedFile, RowSource, exported
from expirytrack_dagster.exports.tickers import TickerBook

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
    book = TickerBook()
    with data.open("wb") as handle:
        handle.write((",".join(FIELDS) + "\n").encode())
        with pacsv.CSVWriter(handle, _SCHEMA, write_options=_OPTIONS) as out:
            for run in contract_runs(source.batches()):
                if run.first:
                    book.claim(run.ticker, run.instrument_key)
                batch = run.rows
                stamps = batch.column("timestamp")
                out.write_batch(
                    pa.RecordBatch.from_arrays(
                        [
                            pa.array([run.ticker] * batch.num_rows, pa.string()),
                            ist_date_text(stamps),
                            ist_time_text(stamps),
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
