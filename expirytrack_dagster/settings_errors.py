"""One-line settings errors: ``SettingsError`` and the checks that raise it (keys, values).

A message names where the setting came from (the settings file or an environment variable), the
key, the value and what is allowed, on one line, so that the CLI, ``dagster definitions
validate`` and the UI show the user exactly what to change.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

_Model = TypeVar("_Model", bound=BaseModel)


class SettingsError(ValueError):
    """A setting is unknown or not allowed; the message is one line: where, key, value, allowed."""


def unknown_key(source: str, key: str, allowed: Iterable[str]) -> SettingsError:
    """The error for ``key`` (dotted, e.g. ``collection.intervall``), suggesting the nearest."""
    allowed = list(allowed)
    name = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(name, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return SettingsError(f"{source}: unknown key {key!r}{hint}; allowed: {', '.join(allowed)}")


def check_keys(source: str, prefix: str, given: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Raise ``SettingsError`` for the first key of ``given`` not in ``allowed``."""
    allowed = list(allowed)
    for key in given:
        if key not in allowed:
            raise unknown_key(source, f"{prefix}{key}", allowed)


def section(config: Mapping[str, Any], name: str, source: str) -> dict[str, Any]:
    """``config[name]`` as a dict (empty when absent or null); a mapping is required."""
    value = config.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SettingsError(f"{source}: {name} = {value!r}: must be a mapping of settings")
    return dict(value)


def build_checked(
    model: type[_Model],
    fields: Mapping[str, Any],
    *,
    source: str,
    prefix: str,
    sources: Mapping[str, str] | None = None,
    allowed: Iterable[str] | None = None,
) -> _Model:
    """``model(**fields)`` after refusing unknown keys; a refused value becomes one line.

    ``allowed`` narrows the keys a user may give (default: every public field of ``model``).
    ``sources`` names where a field came from when not from ``source`` (an environment variable),
    so the message points at what the user must change.
    """
    if allowed is None:
        allowed = [name for name in model.model_fields if not name.startswith("_")]
    check_keys(source, prefix, fields, allowed)
    try:
        return model(**fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        top = str(error["loc"][0]) if error["loc"] else ""
        where = (sources or {}).get(top)
        what = where or f"{source}: {prefix}{field}"
        ctx = error.get("ctx") or {}
        reason = str(ctx["error"]) if "error" in ctx else error["msg"]
        raise SettingsError(f"{what} = {error['input']!r}: {reason}") from None
