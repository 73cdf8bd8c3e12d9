"""The MetaTrader 5 export: one bar file per contract in MT5's "Import bars" CSV layout.

Each ``<stem>_<ticker>.csv`` is tab-separated with the header MT5 itself writes when it exports
bars, which its import dialog (custom symbol → Bars → Import Bars) reads back::

    <DATE>	<TIME>	<OPEN>	<HIGH>	<LOW>	<CLOSE>	<TICKVOL>	<VOL>	<SPREAD>
    2025.08.14	09:15:00	212.5	214	211.05	213.4	1275	1275	0

Dates ``YYYY.MM.DD`` and times ``HH:MM:SS`` in IST, the bar's opening minute (MT5 has no time
zones: keep the custom symbol in IST, or use the dialog's hour shift). MT5 keeps a custom
symbol's history as one-minute bars and builds its timeframes from them, so export ``1minute``
for MT5; coarser bars import as single minutes stamped at their open. MT5 bars have no
open-interest field: open interest is not in this export (use CSV, Parquet, XLSX or AmiBroker for
it). ``<TICKVOL>`` and ``<VOL>`` both carry the exchange volume (candles carry no tick counts and
MT5 charts tick volume by default); ``<SPREAD>`` is 0 (candles carry no quotes). A file is named
by the contract's ticker (``exports.tickers``), which is unique per contract.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from expirytrack_dagster.exports.bar_text import ist_date_text, ist_time_text
from expirytrack_dagster.exports.contract_runs import contract_runs
from expirytrack_dagster.exports.formats import Progress, WriteOptions
from expirytrack_dagster.exports.rows import ExportedFile, RowSource, exported
from expirytrack_dagster.exports.tickers import TickerBook

HEADER = (
    "<DATE>",
    "<TIME>",
    "<OPEN>",
    "<HIGH>",
    "<LOW>",
    "<CLOSE>",
    "<TICKVOL>",
    "<VOL>",
    "<SPREAD>",
)
_SCHEMA = pa.schema(
    [("date", pa.string()), ("time", pa.string())]
    + [(name, pa.float64()) for name in ("open", "high", "low", "close")]
    + [("tickvol", pa.int64()), ("vol", pa.int64()), ("spread", pa.int64())]
)
_OPTIONS = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")


def write(
    source: RowSource,
    directory: Path,
    *,
    stem: str,
    options: WriteOptions,
    progress: Progress,
) -> list[ExportedFile]:
    """Write one MT5 bar file per contract under ``directory``."""
    files: list[ExportedFile] = []
    handle = writer = path = None
    rows = 0
    book = TickerBook()

    def finish() -> None:
        if writer is not None:
            writer.close()
            handle.close()
            files.append(exported(path, rows))

    for run in contract_runs(source.batches()):
        if run.first:
            finish()
            path = directory / f"{stem}_{book.claim(run.ticker, run.instrument_key)}.csv"
            handle = path.open("xb")  # never over a file already written
            handle.write(("\t".join(HEADER) + "\n").encode())
            writer = pacsv.CSVWriter(handle, _SCHEMA, write_options=_OPTIONS)
            rows = 0
        batch = run.rows
        stamps = batch.column("timestamp")
        volume = batch.column("volume")
        writer.write_batch(
            pa.RecordBatch.from_arrays(
                [
                    ist_date_text(stamps, "."),
                    ist_time_text(stamps),
                    *(batch.column(name) for name in ("open", "high", "low", "close")),
                    volume,
                    volume,
                    pa.array(np.zeros(batch.num_rows, np.int64)),
                ],
                schema=_SCHEMA,
            )
        )
        rows += batch.num_rows
        progress(batch.num_rows)
    finish()
    return files
