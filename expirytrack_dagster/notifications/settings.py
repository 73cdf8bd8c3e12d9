"""The ``notifications:`` settings: which events to send, and the webhook and email channels.

Secrets never sit in the settings file: a webhook URL names its secret part ``{token}`` and the
environment variable that holds it (``token_env``), and the SMTP password comes from the variable
named by ``password_env``. The variables are read when a message is sent, so loading the project
without them set (the CLI, another shell) works; a send without them fails with the variable's
name, never its value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from expirytrack_dagster.settings import SettingsError, build_checked, section

EVENTS = (
    "run_failed",
    "partition_collected",
    "blocking_check_failed",
    "token_deadline",
    "new_partition",
)
"""What can be notified; ``events:`` picks a subset (default: all)."""

WEBHOOK_FORMATS = ("slack", "discord", "telegram")
SMTP_SECURITY = ("starttls", "ssl", "none")
TOKEN_PLACEHOLDER = "{token}"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _env_name(value: str | None) -> str | None:
    if value is not None and not _ENV_NAME.match(value):
        raise ValueError("must be an environment variable name (letters, digits, _)")
    return value


class WebhookSettings(BaseModel):
    """One webhook: the payload shape, the URL (``{token}`` marks its secret part), the variable."""

    model_config = ConfigDict(frozen=True)

    format: str = Field(description="slack, discord or telegram: the JSON payload's shape.")
    url: str = Field(
        description="e.g. https://hooks.slack.com/services/{token}; {token} is filled from token_env."
    )
    token_env: str | None = Field(
        default=None, description="The environment variable holding the URL's secret part."
    )
    chat_id: str | None = Field(default=None, description="Telegram only: the chat to post to.")
    timeout_s: float = Field(default=10.0, description="Seconds before a send gives up.")

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in WEBHOOK_FORMATS:
            raise ValueError(f"must be one of {', '.join(WEBHOOK_FORMATS)}")
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or http:// for a local receiver)")
        return value

    @field_validator("token_env")
    @classmethod
    def _token_env_name(cls, value: str | None) -> str | None:
        return _env_name(value)

    @field_validator("timeout_s")
    @classmethod
    def _positive_timeout(cls, value: float) -> float:
        if not value > 0:
            raise ValueError("must be a number > 0")
        return value

    def problem(self) -> tuple[str, Any, str] | None:
        """``(key, value, what is wrong)`` when fields contradict each other, else None."""
        has_placeholder = TOKEN_PLACEHOLDER in self.url
        if has_placeholder and not self.token_env:
            return "token_env", None, "the url has {token}: name the variable that holds it"
        if self.token_env and not has_placeholder:
            return "url", self.url, "token_env is set: mark where the token goes with {token}"
        if self.format == "telegram" and not self.chat_id:
            return "chat_id", None, "a telegram webhook needs the chat to post to"
        if self.format != "telegram" and self.chat_id:
            return "chat_id", self.chat_id, "only telegram webhooks take a chat_id"
        return None


class EmailSettings(BaseModel):
    """Email over SMTP: server, security, login (password from ``password_env``), addresses."""

    model_config = ConfigDict(frozen=True)

    host: str = Field(description="The SMTP server, e.g. smtp.gmail.com.")
    port: int = Field(default=587, description="587 for starttls, 465 for ssl, 25 for none.")
    security: str = Field(default="starttls", description="starttls, ssl or none.")
    username: str | None = Field(
        default=None, description="The SMTP login, if the server needs one."
    )
    password_env: str | None = Field(
        default=None, description="The environment variable holding the SMTP password."
    )
    sender: str = Field(description="The From address.")
    recipients: list[str] = Field(description="The To addresses.")
    ca_cert_path: str | None = Field(
        default=None, description="Extra CA certificate to trust (a private mail server's)."
    )
    timeout_s: float = Field(default=20.0, description="Seconds before a send gives up.")

    @field_validator("security")
    @classmethod
    def _known_security(cls, value: str) -> str:
        if value not in SMTP_SECURITY:
            raise ValueError(f"must be one of {', '.join(SMTP_SECURITY)}")
        return value

    @field_validator("port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError("must be a port number 1-65535")
        return value

    @field_validator("password_env")
    @classmethod
    def _password_env_name(cls, value: str | None) -> str | None:
        return _env_name(value)

    @field_validator("sender")
    @classmethod
    def _address(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError("must be an email address")
        return value

    @field_validator("recipients")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        if not value or any("@" not in address for address in value):
            raise ValueError("must be a non-empty list of email addresses")
        return value

    @field_validator("timeout_s")
    @classmethod
    def _positive_timeout(cls, value: float) -> float:
        if not value > 0:
            raise ValueError("must be a number > 0")
        return value

    def problem(self) -> tuple[str, Any, str] | None:
        """``(key, value, what is wrong)`` when fields contradict each other, else None."""
        if self.username and not self.password_env:
            return "password_env", None, "a username needs the variable holding its password"
        if self.password_env and not self.username:
            return "username", None, "password_env is set: the login name is needed too"
        return None


class NotificationSettings(BaseModel):
    """Which events are sent, through which channels, and the token warning lead time."""

    model_config = ConfigDict(frozen=True)

    events: list[str] = Field(
        default_factory=lambda: list(EVENTS), description=f"Any of {', '.join(EVENTS)}."
    )
    token_warning_hours: float = Field(
        default=8.0, description="Warn once when the Upstox token dies within this many hours."
    )
    ui_url: str | None = Field(
        default=None, description="The Dagster UI's address, e.g. http://localhost:3000: links."
    )
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    email: EmailSettings | None = None

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: list[str]) -> list[str]:
        if any(event not in EVENTS for event in value):
            raise ValueError(f"must be a list of {', '.join(EVENTS)}")
        return value

    @field_validator("token_warning_hours")
    @classmethod
    def _positive_hours(cls, value: float) -> float:
        if not value > 0:
            raise ValueError("must be a number of hours > 0")
        return value

    @field_validator("ui_url")
    @classmethod
    def _ui_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @property
    def has_channels(self) -> bool:
        return bool(self.webhooks or self.email)


def notification_settings(config: Mapping[str, Any], source: str) -> NotificationSettings:
    """The ``notifications:`` section, checked key by key; ``SettingsError`` is one line."""
    fields = section(config, "notifications", source)
    prefix = "notifications."
    webhooks = fields.get("webhooks")
    if webhooks is not None:
        if not isinstance(webhooks, list):
            raise SettingsError(
                f"{source}: {prefix}webhooks = {webhooks!r}: must be a list of webhooks"
            )
        fields["webhooks"] = [
            _channel(WebhookSettings, entry, source, f"{prefix}webhooks[{i}]")
            for i, entry in enumerate(webhooks)
        ]
    if fields.get("email") is not None:
        fields["email"] = _channel(EmailSettings, fields["email"], source, f"{prefix}email")
    return build_checked(NotificationSettings, fields, source=source, prefix=prefix)


def _channel(
    model: type[WebhookSettings] | type[EmailSettings], value: Any, source: str, where: str
) -> Any:
    if not isinstance(value, Mapping):
        raise SettingsError(f"{source}: {where} = {value!r}: must be a mapping of settings")
    channel = build_checked(model, dict(value), source=source, prefix=f"{where}.")
    if problem := channel.problem():
        key, given, reason = problem
        raise SettingsError(f"{source}: {where}.{key} = {given!r}: {reason}")
    return channel
