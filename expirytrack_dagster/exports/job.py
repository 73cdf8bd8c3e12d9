"""The ``export_data`` Dagster job: the export command's selection as run config, for the UI.

Launch it from the Launchpad of the ``export_data`` job (Jobs → export_data → Launchpad): the
config holds the same selection as ``expirytrack export``'s flags. The run logs its progress,
and its output's metadata holds the manifest (files, rows, checksums, data source). It reads the
collection database read-only, so it can run beside a collection run's readers; while a
collection run writes, it waits for the file (DuckDB allows one writer or many readers).

No ``from __future__ import annotations`` here: Dagster reads the op's and config's type
annotations at definition time and cannot resolve them as strings.
"""

from datetime import date
from pathlib import Path

from dagster import Config, MetadataValue, OpExecutionContext, job, op
from pydantic import Field

from expirytrack_dagster.exports.formats import FORMAT_NAMES, WriteOptions
from expirytrack_dagster.exports.manifest import MANIFEST_NAME
from expirytrack_dagster.exports.run import export
from expirytrack_dagster.exports.selection import Selection
from expirytrack_dagster.settings import CollectionSettings


class ExportConfig(Config):
    """One export's selection and format (see ``expirytrack export --help`` for each field)."""

    format: str = Field(description=f"One of {', '.join(FORMAT_NAMES)}.")
    underlyings: list[str] = Field(description="Underlyings, e.g. [NIFTY, BANKNIFTY].")
    out: str | None = Field(
        default=None,
        description="A new or empty directory; default: exports/<run id> beside the database.",
    )
    expiries: list[str] = Field(default=[], description="Expiry dates YYYY-MM-DD (or a range).")
    expiry_from: str | None = Field(default=None, description="First expiry date of a range.")
    expiry_to: str | None = Field(default=None, description="Last expiry date of a range.")
    expiry_kind: str = Field(default="all", description="all, monthly or weekly.")
    types: list[str] = Field(default=["CE", "PE", "FUT"], description="Contract types.")
    strike_min: float | None = Field(default=None, description="Lowest strike.")
    strike_max: float | None = Field(default=None, description="Highest strike.")
    atm: int | None = Field(default=None, description="N strikes either side of the ATM strike.")
    atm_at: str | None = Field(default=None, description="Minute of the ATM strike, IST.")
    start: str | None = Field(default=None, description="First candle date or minute, IST.")
    end: str | None = Field(default=None, description="Last candle date or minute, IST.")
    interval: str = Field(default="1minute", description="1minute … 60minute, or day.")
    gzip: bool = Field(default=False, description="CSV: gzip-compressed.")
    per_contract: bool = Field(default=False, description="CSV: one file per contract.")
    sheet_by: str = Field(default="expiry", description="XLSX: expiry or expiry_type.")

    def selection(self) -> Selection:
        return Selection(
            underlyings=tuple(self.underlyings),
            expiries=tuple(date.fromisoformat(d) for d in self.expiries),
            expiry_from=date.fromisoformat(self.expiry_from) if self.expiry_from else None,
            expiry_to=date.fromisoformat(self.expiry_to) if self.expiry_to else None,
            expiry_kind=self.expiry_kind,
            types=tuple(self.types),
            strike_min=self.strike_min,
            strike_max=self.strike_max,
            atm=self.atm,
            atm_at=self.atm_at,
            start=self.start,
            end=self.end,
            interval=self.interval,
        )


@op(description="Export the configured selection of collected candles; the manifest as metadata.")
def export_candles(
    context: OpExecutionContext, config: ExportConfig, collection: CollectionSettings
) -> str:
    database = Path(collection.database)
    out = Path(config.out) if config.out else database.parent / "exports" / context.run_id[:8]
    state = {"total": 0, "done": 0, "logged": 0}

    def on_total(total: int) -> None:
        state["total"] = total
        context.log.info(f"exporting {total:,} rows as {config.format} to {out}")

    def progress(rows: int) -> None:
        state["done"] += rows
        if state["total"] and state["done"] - state["logged"] >= state["total"] / 10:
            state["logged"] = state["done"]
            context.log.info(
                f"{state['done']:,} of {state['total']:,} rows "
                f"({100 * state['done'] / state['total']:.0f}%)"
            )

    result = export(
        config.selection(),
        config.format,
        out,
        database=database,
        options=WriteOptions(
            gzip=config.gzip, per_contract=config.per_contract, sheet_by=config.sheet_by
        ),
        on_total=on_total,
        progress=progress,
    )
    manifest = result.manifest
    context.add_output_metadata(
        {
            "rows": manifest.rows,
            "files": len(manifest.files),
            "synthetic": manifest.synthetic,
            "directory": MetadataValue.path(str(result.directory)),
            "manifest": MetadataValue.json(manifest.to_json(result.directory)),
        }
    )
    context.log.info(
        f"wrote {manifest.rows:,} rows in {len(manifest.files)} file(s); "
        f"{MANIFEST_NAME} in {result.directory}"
    )
    return str(result.manifest_path)


@job(description="Export collected candles (Parquet, CSV, XLSX, AmiBroker, MetaTrader 5).")
def export_data() -> None:
    export_candles()
