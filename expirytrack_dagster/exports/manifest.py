"""The manifest every export writes beside its files: what was selected, what was written, from
which data, and each file's row count and SHA-256."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from expirytrack_dagster.exports.rows import ExportedFile

MANIFEST_NAME = "_manifest.json"
"""Leading underscore: Parquet readers (pyarrow, pandas, Spark) skip it when reading the dataset."""


def software_version() -> str:
    """This package's installed version."""
    try:
        return version("expirytrack-dagster")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


@dataclass(frozen=True)
class Manifest:
    """What one export holds; ``to_json`` is the file's content."""

    format: str
    interval: str
    selection: dict[str, Any]
    source: str | None
    database: str
    files: list[ExportedFile]
    options: dict[str, Any]

    @property
    def synthetic(self) -> bool:
        return self.source == "sandbox"

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    def to_json(self, root: Path) -> dict[str, Any]:
        return {
            "format": self.format,
            "interval": self.interval,
            "data_source": self.source,
            "synthetic": self.synthetic,
            "note": (
                "SYNTHETIC data from the built-in Upstox sandbox: not market data"
                if self.synthetic
                else "collected from the Upstox expired-instruments API"
            ),
            "database": self.database,
            "selection": self.selection,
            "options": self.options,
            "rows": self.rows,
            "files": [
                {"path": f.path.relative_to(root).as_posix(), "rows": f.rows, "sha256": f.sha256}
                for f in self.files
            ],
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "expirytrack_version": software_version(),
            "timestamps": "bar opening minute, IST (+05:30)",
        }


def write_manifest(manifest: Manifest, root: Path) -> Path:
    """Write ``_manifest.json`` into ``root`` (the export's directory)."""
    path = root / MANIFEST_NAME
    path.write_text(json.dumps(manifest.to_json(root), indent=2) + "\n")
    return path
