"""Where messages go: webhooks (Slack, Discord, Telegram payloads) and email over SMTP.

Webhooks are posted with httpx (the project's HTTP client: timeouts, TLS, connection retries);
email is sent with the standard library's ``smtplib`` and ``email`` (no third-party sender
is needed for one plain-text message). Every secret is read from its environment variable at send
time and is replaced by ``***`` in whatever a failure says: channel errors are rebuilt from the
status code and the server's reply, never from the library's exception (httpx puts the URL, and so
a Slack or Telegram token, in its messages), and httpx's own request log line is redacted.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import httpx

from expirytrack_dagster.notifications.messages import Notification
from expirytrack_dagster.notifications.settings import (
    TOKEN_PLACEHOLDER,
    EmailSettings,
    NotificationSettings,
    WebhookSettings,
)

REDACTED = "***"
TEXT_LIMITS = {"slack": 39000, "discord": 2000, "telegram": 4096}
"""Longest message each service accepts (characters); longer ones are shortened to fit."""


class ChannelError(Exception):
    """A message could not be delivered; the message names the channel and why, with no secret."""


class _RedactSecrets(logging.Filter):
    """Replaces known secrets in a log record (httpx logs every request URL at INFO)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            cleaned = redact(message, self.secrets)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True


_LOG_REDACTOR = _RedactSecrets()
logging.getLogger("httpx").addFilter(_LOG_REDACTOR)


def redact(text: str, secrets: Sequence[str] | set[str]) -> str:
    """``text`` with every secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def _secret(variable: str, where: str, env: Mapping[str, str]) -> str:
    value = env.get(variable)
    if not value:
        raise ChannelError(f"{where}: environment variable {variable} is not set")
    _LOG_REDACTOR.secrets.add(value)
    return value


def webhook_payload(webhook: WebhookSettings, notification: Notification) -> dict[str, object]:
    """The JSON body each service expects: plain text, no mentions, no link previews."""
    text = notification.text(TEXT_LIMITS[webhook.format])
    if webhook.format == "slack":
        return {"text": text}
    if webhook.format == "discord":
        return {"content": text, "allowed_mentions": {"parse": []}}
    return {"chat_id": webhook.chat_id, "text": text, "disable_web_page_preview": True}


@dataclass(frozen=True)
class WebhookChannel:
    """Posts a message to one webhook URL."""

    webhook: WebhookSettings

    @property
    def name(self) -> str:
        shown = self.webhook.url.replace(TOKEN_PLACEHOLDER, REDACTED)
        return f"{self.webhook.format} webhook {shown}"

    def send(self, notification: Notification, env: Mapping[str, str]) -> None:
        secrets = []
        url = self.webhook.url
        if self.webhook.token_env:
            token = _secret(self.webhook.token_env, self.name, env)
            secrets.append(token)
            url = url.replace(TOKEN_PLACEHOLDER, token)
        body = webhook_payload(self.webhook, notification)
        transport = httpx.HTTPTransport(retries=2)  # connection failures only
        try:
            with httpx.Client(transport=transport, timeout=self.webhook.timeout_s) as client:
                response = client.post(url, json=body)
        except httpx.HTTPError as exc:
            reason = redact(str(exc) or type(exc).__name__, secrets)
            raise ChannelError(f"{self.name}: {type(exc).__name__}: {reason}") from None
        if response.status_code >= 300:
            reply = redact(response.text[:200], secrets)
            raise ChannelError(f"{self.name}: HTTP {response.status_code}: {reply}")


def email_message(email: EmailSettings, notification: Notification) -> EmailMessage:
    """The plain-text email for ``notification``."""
    message = EmailMessage()
    message["Subject"] = notification.subject
    message["From"] = email.sender
    message["To"] = ", ".join(email.recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="expirytrack")
    message.set_content(notification.text() + "\n")
    return message


@dataclass(frozen=True)
class EmailChannel:
    """Sends a message over SMTP (STARTTLS, implicit TLS or plain), logging in when configured."""

    email: EmailSettings

    @property
    def name(self) -> str:
        return f"email via {self.email.host}:{self.email.port} ({self.email.security})"

    def send(self, notification: Notification, env: Mapping[str, str]) -> None:
        settings = self.email
        password = _secret(settings.password_env, self.name, env) if settings.password_env else None
        tls = ssl.create_default_context(cafile=settings.ca_cert_path)
        message = email_message(settings, notification)
        try:
            if settings.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    settings.host, settings.port, timeout=settings.timeout_s, context=tls
                )
            else:
                smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s)
            with smtp:
                if settings.security == "starttls":
                    smtp.starttls(context=tls)
                if settings.username and password is not None:
                    smtp.login(settings.username, password)
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            reason = redact(_smtp_reason(exc), [password or ""])
            raise ChannelError(f"{self.name}: {type(exc).__name__}: {reason}") from None


def _smtp_reason(exc: BaseException) -> str:
    code, reply = getattr(exc, "smtp_code", None), getattr(exc, "smtp_error", None)
    if code is not None:
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        return f"{code} {text}"
    return str(exc) or "no reason given"


Channel = WebhookChannel | EmailChannel


def channels(settings: NotificationSettings) -> list[Channel]:
    """Every configured channel, webhooks first."""
    found: list[Channel] = [WebhookChannel(webhook) for webhook in settings.webhooks]
    if settings.email is not None:
        found.append(EmailChannel(settings.email))
    return found


def deliver(
    settings: NotificationSettings,
    notification: Notification,
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """Send ``notification`` to every channel (when its event is enabled); the failures, one
    line each. A failed channel does not stop the others, and nothing is retried later: a
    sensor that raised would send the same message again to the channels that did receive it."""
    if notification.event not in settings.events:
        return []
    env = os.environ if env is None else env
    failures = []
    for channel in channels(settings):
        try:
            channel.send(notification, env)
        except ChannelError as exc:
            failures.append(str(exc))
    return failures
