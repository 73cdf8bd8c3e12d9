"""The one typed settings model: built-in defaults, then ``data/expirytrack.yaml``, then the environment.

``load_settings()`` layers three sources with pydantic-settings, each over the one before:

1. the defaults, each written once on the class that uses it (``CollectionSettings``; the client's
   ``RateLimits``, ``RetryPolicy`` and ``ClientSettings``, read by ``UpstoxApi``);
2. the settings file (``EXPIRYTRACK_CONFIG``, default ``data/expirytrack.yaml``): sections
   ``underlyings``, ``collection``, ``upstox``, ``notifications``, ``research``;
3. the environment variables of :data:`ENVIRONMENT` and ``UPSTOX_ACCESS_TOKEN`` (the token and the
   :data:`SECRET_VARIABLES` are passed on as ``EnvVar``, so they never land in run configuration or
   the UI).

The result is typed and checked as a whole: the watched underlyings, the ``collection`` resource,
the ``upstox`` resource of the chosen source (``UpstoxResource`` or ``SandboxResource``, never a
fallback from one to the other) and the notification settings. Anything wrong raises
``SettingsError``, one line naming the file or variable, the key, the value and what is allowed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dagster import EnvVar
from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from expirytrack_dagster.instruments import DEFAULT_UNDERLYINGS, Underlying, merge_underlyings
from expirytrack_dagster.live.settings import LiveSettings, live_settings
from expirytrack_dagster.notifications.settings import NotificationSettings, notification_settings
from expirytrack_dagster.research.settings import ResearchSettings, research_settings
from expirytrack_dagster.resources import UpstoxApi, UpstoxResource
from expirytrack_dagster.sandbox_resource import SandboxResource
from expirytrack_dagster.settings import SANDBOX_PATHS, CollectionSettings
from expirytrack_dagster.settings_errors import (
    SettingsError,
    build_checked,
    check_keys,
    section,
)
from expirytrack_dagster.settings_file import SECTIONS, config_path, load_user_config
from expirytrack_dagster.upstox.ledger import has_password, is_postgres_url, mask_url

ENVIRONMENT: dict[str, tuple[str, str]] = {
    "EXPIRYTRACK_SOURCE": ("upstox", "source"),
    "EXPIRYTRACK_SANDBOX_URL": ("upstox", "sandbox_url"),
    "EXPIRYTRACK_SANDBOX_TOKEN": ("upstox", "sandbox_token"),
    "EXPIRYTRACK_SANDBOX_CA": ("upstox", "ca_cert_path"),
    "EXPIRYTRACK_STATE_DIR": ("upstox", "state_dir"),
    "EXPIRYTRACK_TIME_SCALE": ("upstox", "time_scale"),
    "EXPIRYTRACK_DATABASE": ("collection", "database"),
    "EXPIRYTRACK_LANDING_DIR": ("collection", "landing_dir"),
    "EXPIRYTRACK_LAKEHOUSE_PATH": ("collection", "lakehouse_path"),
    "EXPIRYTRACK_LAKEHOUSE_CATALOG_URL": ("collection", "lakehouse_catalog_url"),
    "EXPIRYTRACK_LEDGER_URL": ("upstox", "ledger_url"),
}
"""Environment variable → (section, key) it sets, over the settings file."""
SECRET_VARIABLES = frozenset({"EXPIRYTRACK_LEDGER_URL"})
"""Variables of :data:`ENVIRONMENT` that may hold a password: passed on as ``EnvVar``, like the
token, so their value is read at run time and never lands in run configuration or the UI."""
TOKEN_VARIABLE = "UPSTOX_ACCESS_TOKEN"

SOURCES = ("auto", "upstox", "sandbox")
"""``upstox.source``: which resource serves ``upstox`` (``auto`` is ``upstox``)."""
RESOURCES: dict[str, type[UpstoxApi]] = {
    "auto": UpstoxResource,
    "upstox": UpstoxResource,
    "sandbox": SandboxResource,
}


@dataclass(frozen=True)
class _FromEnvironment:
    """A value the environment set, with its variable's name (for error messages)."""

    variable: str
    value: Any


_INPUTS: ContextVar[tuple[Mapping[str, Any] | None, Mapping[str, str]] | None] = ContextVar(
    "expirytrack_settings_inputs", default=None
)
"""What ``load_settings`` was given: the file's content (None: read the file) and the environment."""


def _inputs() -> tuple[Mapping[str, Any] | None, Mapping[str, str]]:
    return _INPUTS.get() or (None, os.environ)


class _EnvironmentSource(PydanticBaseSettingsSource):
    """The variables of :data:`ENVIRONMENT` (and the token), placed in their sections."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is placed by __call__

    def __call__(self) -> dict[str, Any]:
        env = _inputs()[1]
        layer: dict[str, Any] = {}
        for variable, (name, key) in ENVIRONMENT.items():
            if env.get(variable):
                value = EnvVar(variable) if variable in SECRET_VARIABLES else env[variable]
                layer.setdefault(name, {})[key] = _FromEnvironment(variable, value)
        if env.get(TOKEN_VARIABLE):
            token = _FromEnvironment(TOKEN_VARIABLE, EnvVar(TOKEN_VARIABLE))
            layer.setdefault("upstox", {})["access_token"] = token
        return layer


class _SettingsFileSource(PydanticBaseSettingsSource):
    """The settings file (or the content ``load_settings`` was given in its place)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        given, env = _inputs()
        path = config_path(env)
        content = load_user_config(path) if given is None else dict(given)
        return {**content, "settings_file": str(path)}


class ExpiryTrackSettings(BaseSettings):
    """Every setting of the project, typed, validated, from defaults, file and environment."""

    model_config = SettingsConfigDict(frozen=True)

    settings_file: Path = Field(description="The settings file the file layer was read from.")
    underlyings: tuple[Underlying, ...] = DEFAULT_UNDERLYINGS
    collection: CollectionSettings = Field(default_factory=CollectionSettings)
    upstox: UpstoxApi = Field(default_factory=UpstoxResource)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    research: ResearchSettings = Field(default_factory=ResearchSettings)
    live: LiveSettings = Field(default_factory=LiveSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier wins: arguments, then the environment, then the file; defaults underneath.
        return (init_settings, _EnvironmentSource(settings_cls), _SettingsFileSource(settings_cls))

    @model_validator(mode="before")
    @classmethod
    def _build_sections(cls, layered: Any) -> Any:
        return _sections(dict(layered))

    @property
    def data_source(self) -> str:
        """'upstox' or 'sandbox'."""
        return self.upstox.resolved_source()


def load_settings(
    config: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> ExpiryTrackSettings:
    """The settings: ``env`` (default ``os.environ``) over ``config`` (default: the settings
    file's content) over the defaults. ``SettingsError`` (one line) when anything is wrong."""
    token = _INPUTS.set((config, os.environ if env is None else env))
    try:
        return ExpiryTrackSettings()
    except ValidationError as exc:
        error = exc.errors()[0]
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, SettingsError):
            raise cause from None
        raise
    finally:
        _INPUTS.reset(token)


def _unwrap(fields: dict[str, Any], origins: dict[str, str]) -> dict[str, Any]:
    """``fields`` with environment values unwrapped; ``origins`` learns key → variable."""
    out = {}
    for key, value in fields.items():
        if isinstance(value, _FromEnvironment):
            origins[key] = value.variable
            value = value.value
        out[key] = value
    return out


def _sections(layered: dict[str, Any]) -> dict[str, Any]:
    """The layered raw settings → typed sections, each refused value one line."""
    settings_file = str(layered.pop("settings_file", config_path()))
    check_keys(settings_file, "", layered, SECTIONS)
    underlyings = merge_underlyings(layered.get("underlyings"), settings_file)
    upstox = _upstox(layered, settings_file)
    return {
        "settings_file": settings_file,
        "underlyings": underlyings,
        "collection": _collection(layered, settings_file, upstox.resolved_source(), underlyings),
        "upstox": upstox,
        "notifications": notification_settings(layered, settings_file),
        "research": research_settings(layered, settings_file),
        "live": live_settings(layered, settings_file, underlyings),
    }


def _upstox(layered: Mapping[str, Any], settings_file: str) -> UpstoxApi:
    """The ``upstox`` resource of the chosen source, from the ``upstox:`` section."""
    origins: dict[str, str] = {}
    fields = _unwrap(section(layered, "upstox", settings_file), origins)
    chosen = str(fields.get("source", "upstox"))
    if chosen not in SOURCES:
        where = origins.get("source", f"{settings_file}: upstox.source")
        raise SettingsError(f"{where} = {fields['source']!r}: must be one of {', '.join(SOURCES)}")
    # One section configures both resources; keys of the other one are kept for it.
    allowed = list(dict.fromkeys([*UpstoxResource.model_fields, *SandboxResource.model_fields]))
    check_keys(settings_file, "upstox.", fields, allowed)
    resource_class = RESOURCES[chosen]
    fields = {k: v for k, v in fields.items() if k in resource_class.model_fields}
    if resource_class is UpstoxResource:
        fields.pop("source", None)  # 'auto' is 'upstox'
    if resource_class is SandboxResource:
        fields.setdefault("state_dir", SANDBOX_PATHS["state_dir"])
    if fields.get("ledger_url") and "ledger_url" not in origins:
        _check_ledger_url(str(fields["ledger_url"]), f"{settings_file}: upstox.ledger_url")
    resource = build_checked(
        resource_class, fields, source=settings_file, prefix="upstox.", sources=origins
    )
    where = origins.get("time_scale", f"{settings_file}: upstox.time_scale")
    if not (math.isfinite(resource.time_scale) and resource.time_scale > 0):
        raise SettingsError(f"{where} = {resource.time_scale!r}: must be a number > 0")
    try:
        resource.rate_limits()
    except ValueError as exc:
        # "RateLimits.per_second must be a positive int, got 0" -> the user's key and value.
        name, _, rest = str(exc).removeprefix("RateLimits.").partition(" must ")
        what, _, value = rest.rpartition(", got ")
        raise SettingsError(f"{settings_file}: upstox.{name} = {value}: must {what}") from None
    return resource


def _check_ledger_url(url: str, where: str) -> None:
    """A rate-limit ledger URL from the settings file: postgresql://, and without a password
    (the file's settings are shown in the Dagster UI). Refused without echoing a secret."""
    if not is_postgres_url(url):
        raise SettingsError(
            f"{where} = {mask_url(url)!r}: must be empty (the SQLite ledger under state_dir) "
            "or a postgresql:// URL"
        )
    if has_password(url):
        raise SettingsError(
            f"{where} holds a password: remove it from the URL and give it in PGPASSWORD or "
            "~/.pgpass, or set the whole URL in EXPIRYTRACK_LEDGER_URL (settings are shown in the "
            "Dagster UI)"
        )


def _collection(
    layered: Mapping[str, Any],
    settings_file: str,
    data_source: str,
    underlyings: tuple[Underlying, ...],
) -> CollectionSettings:
    """The ``collection`` resource; a sandbox's database and landing zone default to
    :data:`SANDBOX_PATHS`, so synthetic data never lands in the real stores."""
    origins: dict[str, str] = {}
    fields = _unwrap(section(layered, "collection", settings_file), origins)
    allowed = [name for name in CollectionSettings.model_fields if name != "underlyings"]
    check_keys(settings_file, "collection.", fields, allowed)
    if data_source == "sandbox":
        for name in ("database", "landing_dir"):
            fields.setdefault(name, SANDBOX_PATHS[name])
    given = [k for k in ("lakehouse_path", "lakehouse_catalog_url") if fields.get(k)]
    if len(given) == 1:
        missing = ({"lakehouse_path", "lakehouse_catalog_url"} - set(given)).pop()
        where = origins.get(given[0], f"{settings_file}: collection.{given[0]}")
        raise SettingsError(
            f"{where} is set but collection.{missing} is not: a shared lakehouse needs both"
        )
    catalog_url = fields.get("lakehouse_catalog_url")
    if catalog_url and urlsplit(str(catalog_url)).password is not None:
        # Refused without echoing the value: it holds a secret.
        where = origins.get(
            "lakehouse_catalog_url", f"{settings_file}: collection.lakehouse_catalog_url"
        )
        raise SettingsError(
            f"{where} holds a password: remove it from the URL and give it in PGPASSWORD or "
            "~/.pgpass (settings are shown in the Dagster UI)"
        )
    fields["underlyings"] = {u.symbol: u.instrument_key for u in underlyings}
    return build_checked(
        CollectionSettings, fields, source=settings_file, prefix="collection.", sources=origins
    )
