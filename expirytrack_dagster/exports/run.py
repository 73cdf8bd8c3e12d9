"""One export, start to finish: resolve the selection, stream its rows to a format's writer, write
the manifest, and only then move the finished files into the output directory."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from expirytrack_dagster.exports.formats import WriteOptions, writer
from expirytrack_dagster.exports.manifest import MANIFEST_NAME, Manifest, write_manifest
from expirytrack_dagster.exports.rows import RowSource
from expirytrack_dagster.exports.selection import (
    ExportError,
    Selection,
    count_rows,
    parts,
    register,
    resolve,
    rows_query,
)
from expirytrack_dagster.storage.database import open_connection

EXPORT_MEMORY_LIMIT = "192MB"
"""DuckDB's memory for an export. Each sort is one run of at most ``selection.CHUNK_ROWS``
candles, which fits in it; anything bigger spills to a temporary folder, so an export's memory
stays bounded whatever the selection's size."""


@dataclass(frozen=True)
class ExportResult:
    """A finished export: its directory, manifest path and what it holds."""

    directory: Path
    manifest_path: Path
    manifest: Manifest


def file_stem(format_name: str, selection: Selection, synthetic: bool) -> str:
    """``expirytrack_NIFTY_5minute`` (``expirytrack_SYNTHETIC_…`` for sandbox data)."""
    marker = "SYNTHETIC_" if synthetic else ""
    return f"expirytrack_{marker}{'-'.join(selection.underlyings)}_{selection.interval}"


def export(
    selection: Selection,
    format_name: str,
    out: Path | str,
    *,
    database: Path | str,
    options: WriteOptions | None = None,
    on_total: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ExportResult:
    """Export ``selection`` from ``database`` as ``format_name`` into the directory ``out``.

    ``out`` must not exist or be empty. Files are written into ``out.partial`` beside it and
    moved into ``out`` when the manifest is written, so an interrupted export leaves no
    half-written files where a finished export would be. ``on_total`` is called once with the
    row count (before writing), ``progress`` with each number of rows written.
    """
    options = options or WriteOptions()
    write = writer(format_name)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} exists and is not an empty directory: choose a new --out")
    database = Path(database)
    if not database.exists():
        raise ExportError(f"no database at {database}: collect data first")
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        db = open_connection(
            database, read_only=True, lock_timeout_s=60.0, memory_limit=EXPORT_MEMORY_LIMIT
        )
        try:
            db.execute("SET TimeZone = 'Asia/Kolkata'")
            resolved = resolve(db, selection)
            register(db, resolved)
            if on_total is not None:
                on_total(count_rows(db, resolved))
            query, params = rows_query(resolved)
            stem = file_stem(format_name, selection, resolved.synthetic)
            files = write(
                RowSource(db, query, params, parts(db, resolved)),
                partial,
                stem=stem,
                options=options,
                progress=progress or (lambda rows: None),
            )
        finally:
            db.close()
        if not any(f.rows for f in files):
            raise ExportError(
                f"no candles of the selected contracts between {selection.start or 'the first'} "
                f"and {selection.end or 'the last'} minute"
            )
        manifest = Manifest(
            format=format_name,
            interval=selection.interval,
            selection=selection.describe(),
            source=resolved.source,
            database=str(database),
            files=files,
            options=asdict(options),
        )
        write_manifest(manifest, partial)
        if out.exists():
            out.rmdir()
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    moved = [replace(f, path=out / f.path.relative_to(partial)) for f in files]
    manifest = replace(manifest, files=moved)
    return ExportResult(out, out / MANIFEST_NAME, manifest)
