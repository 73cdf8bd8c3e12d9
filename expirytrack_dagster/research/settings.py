"""The ``research:`` settings resource: rate, bucket size, forward staleness and the futures roll rule.

Read by the research assets (``assets/research.py``) and their checks. Change them under
``research:`` in ``data/expirytrack.yaml``::

    research:
      rate: 0.065            # annual, continuously compounded, for Black-76 discounting
      bucket_minutes: 15     # chain_metrics buckets: 09:15, 09:30, ... of each session
      max_age_minutes: 5     # a leg older than this at a minute gives no forward and no IV
      roll: on_expiry        # or {sessions_before: 2}

Every value is checked when the settings load; a wrong one raises ``SettingsError`` (one line
naming the file, the key, the value and what is allowed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field, field_validator

from expirytrack_dagster.research.continuous import RollRule
from expirytrack_dagster.settings_errors import SettingsError, build_checked, check_keys, section

SESSION_MINUTES = 375
"""09:15-15:30: the longest bucket that still splits a session."""


class ResearchSettings(ConfigurableResource):
    """Settings of the research layer (IV and greeks, chain metrics, continuous futures)."""

    rate: float = Field(
        default=0.065,
        description="Risk-free rate for Black-76, annual and continuously compounded (0.065 = 6.5 %).",
    )
    bucket_minutes: int = Field(
        default=15,
        description="chain_metrics has one row per session and per bucket of this many minutes.",
    )
    max_age_minutes: int = Field(
        default=5,
        description="A leg whose last trade is older than this gives no synthetic forward and no IV.",
    )
    roll_sessions_before: int = Field(
        default=0,
        description="Continuous futures roll this many sessions before expiry "
        "(0: the expiring future is front month through its expiry session). "
        "In the settings file: `roll: on_expiry` or `roll: {sessions_before: N}`.",
    )

    @field_validator("rate")
    @classmethod
    def _sane_rate(cls, value: float) -> float:
        if not (math.isfinite(value) and -0.05 <= value <= 0.5):
            raise ValueError("must be an annual rate between -0.05 and 0.5 (0.065 = 6.5 %)")
        return value

    @field_validator("bucket_minutes")
    @classmethod
    def _bucket(cls, value: int) -> int:
        if not 1 <= value <= SESSION_MINUTES:
            raise ValueError(f"must be a whole number of minutes from 1 to {SESSION_MINUTES}")
        return value

    @field_validator("max_age_minutes", "roll_sessions_before")
    @classmethod
    def _not_negative(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must be a whole number >= 0")
        return value

    @property
    def roll(self) -> RollRule:
        """The roll rule of ``continuous_futures``."""
        return RollRule(sessions_before=self.roll_sessions_before)


_KEYS = ("rate", "bucket_minutes", "max_age_minutes", "roll")


def research_settings(config: Mapping[str, Any], source: str) -> ResearchSettings:
    """The ``research:`` section, checked key by key; ``SettingsError`` is one line.

    ``roll`` is ``on_expiry`` or a mapping ``{sessions_before: N}`` with N >= 0.
    """
    prefix = "research."
    fields = section(config, "research", source)
    check_keys(source, prefix, fields, _KEYS)
    if "roll" in fields:
        fields["roll_sessions_before"] = _roll(fields.pop("roll"), f"{source}: {prefix}roll")
    allowed = [*_KEYS, "roll_sessions_before"]
    return build_checked(ResearchSettings, fields, source=source, prefix=prefix, allowed=allowed)


def _roll(value: Any, where: str) -> int:
    if value == "on_expiry":
        return 0
    if isinstance(value, Mapping) and set(value) == {"sessions_before"}:
        sessions = value["sessions_before"]
        if isinstance(sessions, int) and not isinstance(sessions, bool) and sessions >= 0:
            return sessions
    raise SettingsError(
        f"{where} = {value!r}: must be on_expiry or {{sessions_before: N}} with N a whole number >= 0"
    )
