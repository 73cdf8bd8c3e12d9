"""Watched underlyings: the seven index defaults plus any the user adds in ``data/expirytrack.yaml``.

A user adds an underlying (an index or a stock) by symbol and Upstox instrument key, without
touching code::

    underlyings:
      - symbol: RELIANCE
        instrument_key: "NSE_EQ|INE002A01018"

``EXPIRYTRACK_CONFIG`` points at another settings file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expirytrack_dagster.partitions import validate_symbol
from expirytrack_dagster.settings import SECTIONS, SettingsError, check_keys


@dataclass(frozen=True)
class Underlying:
    """An F&O underlying: the symbol used in partition keys and its Upstox instrument key."""

    symbol: str
    instrument_key: str


DEFAULT_UNDERLYINGS: tuple[Underlying, ...] = (
    Underlying("NIFTY", "NSE_INDEX|Nifty 50"),
    Underlying("BANKNIFTY", "NSE_INDEX|Nifty Bank"),
    Underlying("FINNIFTY", "NSE_INDEX|Nifty Fin Service"),
    Underlying("MIDCPNIFTY", "NSE_INDEX|NIFTY MID SELECT"),
    Underlying("NIFTYNXT50", "NSE_INDEX|Nifty Next 50"),
    Underlying("SENSEX", "BSE_INDEX|SENSEX"),
    Underlying("BANKEX", "BSE_INDEX|BANKEX"),
)

DEFAULT_CONFIG_PATH = Path("data/expirytrack.yaml")


def config_path() -> Path:
    """Where the user's settings live: ``$EXPIRYTRACK_CONFIG`` or ``data/expirytrack.yaml``."""
    return Path(os.environ.get("EXPIRYTRACK_CONFIG", DEFAULT_CONFIG_PATH))


def load_user_config(path: Path | None = None) -> dict[str, Any]:
    """The settings file as a dict (empty when the file does not exist).

    ``SettingsError`` (one line) when the file is not YAML, not a mapping, or has a top-level
    key other than ``underlyings``, ``collection`` and ``upstox``.
    """
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


_UNDERLYING_KEYS = ("symbol", "instrument_key")


def _parse_underlyings(entries: Any, source: str) -> list[Underlying]:
    if not isinstance(entries, list):
        raise SettingsError(
            f"{source}: underlyings = {entries!r}: must be a list of "
            "{symbol: ..., instrument_key: ...} entries"
        )
    out = []
    for i, entry in enumerate(entries):
        where = f"{source}: underlyings[{i}]"
        if not isinstance(entry, dict):
            raise SettingsError(f"{where} = {entry!r}: must have 'symbol' and 'instrument_key'")
        check_keys(source, f"underlyings[{i}].", entry, _UNDERLYING_KEYS)
        if not entry.get("symbol") or not entry.get("instrument_key"):
            raise SettingsError(f"{where} = {entry!r}: needs both 'symbol' and 'instrument_key'")
        try:
            symbol = validate_symbol(str(entry["symbol"]))
        except ValueError as exc:
            raise SettingsError(f"{where}.symbol = {entry['symbol']!r}: {exc}") from None
        out.append(Underlying(symbol, str(entry["instrument_key"])))
    return out


def watched_underlyings(config: dict[str, Any] | None = None) -> tuple[Underlying, ...]:
    """Defaults plus the user's additions; a user entry with a default's symbol replaces it."""
    config = load_user_config() if config is None else config
    extra = _parse_underlyings(config.get("underlyings") or [], str(config_path()))
    by_symbol = {u.symbol: u for u in DEFAULT_UNDERLYINGS}
    for underlying in extra:
        by_symbol[underlying.symbol] = underlying
    return tuple(by_symbol.values())


def underlying_for(symbol: str, config: dict[str, Any] | None = None) -> Underlying:
    """The watched underlying called ``symbol``; a clear error naming the choices otherwise."""
    watched = {u.symbol: u for u in watched_underlyings(config)}
    if symbol not in watched:
        raise KeyError(
            f"{symbol!r} is not a watched underlying ({', '.join(watched)}); add it under "
            f"'underlyings:' in {config_path()}"
        )
    return watched[symbol]
