"""Watched underlyings: the seven index defaults plus any the user adds in ``data/expirytrack.yaml``.

A user adds an underlying (an index or a stock) by symbol and Upstox instrument key, without
touching code::

    underlyings:
      - symbol: RELIANCE
        instrument_key: "NSE_EQ|INE002A01018"

``EXPIRYTRACK_CONFIG`` points at another settings file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from expirytrack_dagster.partitions import validate_symbol
from expirytrack_dagster.settings_errors import SettingsError, check_keys
from expirytrack_dagster.settings_file import config_path, load_user_config

__all__ = [
    "DEFAULT_UNDERLYINGS",
    "Underlying",
    "config_path",
    "load_user_config",
    "merge_underlyings",
    "pick_underlying",
    "underlying_for",
    "watched_underlyings",
]


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

_UNDERLYING_KEYS = ("symbol", "instrument_key")


def _parse_underlyings(entries: Any, source: str) -> list[Underlying]:
    """The ``underlyings:`` entries of ``source``; ``SettingsError`` (one line) for a bad one."""
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


def merge_underlyings(entries: Any, source: str) -> tuple[Underlying, ...]:
    """Defaults plus the ``underlyings:`` entries of ``source``; a user entry with a default's
    symbol replaces it."""
    by_symbol = {u.symbol: u for u in DEFAULT_UNDERLYINGS}
    for underlying in _parse_underlyings(entries or [], source):
        by_symbol[underlying.symbol] = underlying
    return tuple(by_symbol.values())


def watched_underlyings(config: dict[str, Any] | None = None) -> tuple[Underlying, ...]:
    """Defaults plus the additions in ``config`` (the settings file when None).

    Inside runs and sensors, read ``CollectionSettings.underlyings`` instead: the settings as
    loaded once with the definitions.
    """
    config = load_user_config() if config is None else config
    return merge_underlyings(config.get("underlyings"), str(config_path()))


def underlying_for(symbol: str, config: dict[str, Any] | None = None) -> Underlying:
    """The watched underlying called ``symbol`` (settings file when ``config`` is None)."""
    return pick_underlying(symbol, watched_underlyings(config))


def pick_underlying(symbol: str, watched: Iterable[Underlying]) -> Underlying:
    """The underlying of ``watched`` called ``symbol``; a clear error naming the choices otherwise."""
    by_symbol = {u.symbol: u for u in watched}
    if symbol not in by_symbol:
        raise KeyError(
            f"{symbol!r} is not a watched underlying ({', '.join(by_symbol)}); add it under "
            f"'underlyings:' in {config_path()}"
        )
    return by_symbol[symbol]
