"""The ``live:`` settings resource: which underlyings and which of their expiries the live OI
capture polls every minute.

Read by ``oi_snapshots`` (``live/assets.py``) for every capture run, the daily schedule's
included; a run's own config (``underlyings``, ``expiries`` in the Launchpad) wins over it.
Change them under ``live:`` in ``data/expirytrack.yaml``::

    live:
      underlyings: [NIFTY, BANKNIFTY]              # watched underlyings (see 'underlyings:')
      expiries: [nearest_weekly, current_monthly]  # also nearest, next, next_monthly

Checked when the settings load; a wrong value raises ``SettingsError`` (one line naming the file,
the key, the value and what is allowed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from expirytrack_dagster.instruments import Underlying
from expirytrack_dagster.live.targets import DEFAULT_SELECTORS, EXPIRY_SELECTORS
from expirytrack_dagster.settings_errors import SettingsError, build_checked, check_keys, section

DEFAULT_LIVE_UNDERLYINGS: tuple[str, ...] = (
    "NIFTY",
    "BANKNIFTY",
    "FINNIFTY",
    "MIDCPNIFTY",
    "SENSEX",
)
"""The indices captured unless ``live.underlyings`` says otherwise."""

_KEYS = ("underlyings", "expiries")


class LiveSettings(ConfigurableResource):
    """What the live OI capture polls, unless a run's config says otherwise."""

    underlyings: list[str] = Field(
        default=list(DEFAULT_LIVE_UNDERLYINGS),
        description="Symbols of watched underlyings whose option chains are captured.",
    )
    expiries: list[str] = Field(
        default=list(DEFAULT_SELECTORS),
        description="Which current expiries of each: " + ", ".join(EXPIRY_SELECTORS) + ".",
    )


def live_settings(
    config: Mapping[str, Any], source: str, watched: Sequence[Underlying]
) -> LiveSettings:
    """The ``live:`` section, checked against the watched underlyings and the expiry selectors."""
    prefix = "live."
    fields = section(config, "live", source)
    check_keys(source, prefix, fields, _KEYS)
    symbols = [u.symbol for u in watched]
    for key, allowed, what in (
        ("underlyings", symbols, "watched underlyings (add one under 'underlyings:')"),
        ("expiries", EXPIRY_SELECTORS, "expiry selectors"),
    ):
        if key not in fields:
            continue
        values = fields[key]
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or not values:
            raise SettingsError(f"{source}: {prefix}{key} = {values!r}: must be a non-empty list")
        for value in values:
            if value not in allowed:
                raise SettingsError(
                    f"{source}: {prefix}{key}: {value!r} is not one of the {what}: "
                    + ", ".join(allowed)
                )
        fields[key] = [str(v) for v in values]
    return build_checked(LiveSettings, fields, source=source, prefix=prefix)
