"""The settings file ``data/expirytrack.yaml``: where it is, its sections, reading it in one line.

``EXPIRYTRACK_CONFIG`` points at another file. A file that is not YAML, not a mapping, or has a
top-level key other than :data:`SECTIONS` is refused with a one-line ``SettingsError``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from expirytrack_dagster.settings_errors import SettingsError, check_keys

DEFAULT_CONFIG_PATH = Path("data/expirytrack.yaml")

SECTIONS = ("underlyings", "collection", "upstox", "notifications", "research", "live")
"""The top-level keys of ``data/expirytrack.yaml``."""


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the user's settings live: ``EXPIRYTRACK_CONFIG`` of ``env`` (default: this
    process's environment) or ``data/expirytrack.yaml``."""
    env = os.environ if env is None else env
    return Path(env.get("EXPIRYTRACK_CONFIG", DEFAULT_CONFIG_PATH))


def load_user_config(path: Path | None = None) -> dict[str, Any]:
    """The settings file as a dict (empty when the file does not exist)."""
    import yaml  # dagster depends on PyYAML

    path = path or config_path()
    if not path.exists():
        return {}
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise SettingsError(f"{path}: not valid YAML: {problem}{where}") from None
    if not isinstance(loaded, dict):
        raise SettingsError(f"{path}: expected a mapping of {', '.join(SECTIONS)} at the top level")
    check_keys(str(path), "", loaded, SECTIONS)
    return loaded
