"""Channels deliver to real loopback receivers, exact content, and never leak a secret."""

from __future__ import annotations

import logging
import traceback

import pytest

from expirytrack_dagster.notifications.channels import (
    ChannelError,
    EmailChannel,
    WebhookChannel,
    deliver,
)
from expirytrack_dagster.notifications.messages import Notification
from expirytrack_dagster.notifications.settings import (
    EmailSettings,
    NotificationSettings,
    WebhookSettings,
)
from expirytrack_dagster_tests.notifications.conftest import (
    BOT_TOKEN,
    ENV,
    SECRETS,
    SMTP_PASSWORD,
    SMTP_USER,
    WEBHOOK_TOKEN,
    free_port,
)

# The plain-SMTP tests log in without TLS on purpose (loopback only); aiosmtpd warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

NOTE = Notification(
    "new_partition",
    "New expiry partition: NIFTY_2025-09-04",
    "The expiry NIFTY_2025-09-04 became a partition.",
    "NIFTY_2025-09-04",
    "Collect it when you choose: `expirytrack backfill NIFTY --since 2025-09-04 --until 2025-09-04`.",
)
TEXT = (
    "[ExpiryTrack] New expiry partition: NIFTY_2025-09-04\n\n"
    "What happened: The expiry NIFTY_2025-09-04 became a partition.\n"
    "Partition: NIFTY_2025-09-04\n"
    "Next step: Collect it when you choose: "
    "`expirytrack backfill NIFTY --since 2025-09-04 --until 2025-09-04`."
)


def wire_text(mail) -> str:
    """The body as written, with SMTP's CRLF line ends read back as newlines."""
    return mail.get_content().replace("\r\n", "\n")


def webhooks(base: str) -> list[WebhookSettings]:
    return [
        WebhookSettings(
            format="slack", url=f"{base}/services/{{token}}", token_env="ET_SLACK_TOKEN"
        ),
        WebhookSettings(
            format="discord", url=f"{base}/api/webhooks/{{token}}", token_env="ET_DISCORD_TOKEN"
        ),
        WebhookSettings(
            format="telegram",
            url=f"{base}/bot{{token}}/sendMessage",
            token_env="ET_BOT_TOKEN",
            chat_id="-100123",
        ),
    ]


def email(port: int, **extra: object) -> EmailSettings:
    fields = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "username": SMTP_USER,
        "password_env": "ET_SMTP_PASSWORD",
        "sender": "expirytrack@example.com",
        "recipients": ["quant@example.com", "desk@example.com"],
    }
    return EmailSettings(**(fields | extra))


def test_every_channel_gets_the_exact_message(receiver, smtp_server) -> None:
    settings = NotificationSettings(webhooks=webhooks(receiver.url), email=email(smtp_server.port))

    assert deliver(settings, NOTE, ENV) == []

    assert receiver.posts == [
        (f"/services/{WEBHOOK_TOKEN}", {"text": TEXT}),
        (f"/api/webhooks/{WEBHOOK_TOKEN}", {"content": TEXT, "allowed_mentions": {"parse": []}}),
        (
            f"/bot{BOT_TOKEN}/sendMessage",
            {"chat_id": "-100123", "text": TEXT, "disable_web_page_preview": True},
        ),
    ]
    assert smtp_server.envelopes == [
        ("expirytrack@example.com", ["quant@example.com", "desk@example.com"])
    ]
    (mail,) = smtp_server.messages
    assert mail["Subject"] == "[ExpiryTrack] New expiry partition: NIFTY_2025-09-04"
    assert mail["To"] == "quant@example.com, desk@example.com"
    assert wire_text(mail) == TEXT + "\n"
    for secret in SECRETS:
        assert secret not in mail.as_string()


def test_starttls_with_a_private_ca(smtp_tls_server) -> None:
    mailbox, ca_cert = smtp_tls_server
    channel = EmailChannel(
        email(mailbox.port, security="starttls", ca_cert_path=str(ca_cert), host="localhost")
    )

    channel.send(NOTE, ENV)

    assert [wire_text(m) for m in mailbox.messages] == [TEXT + "\n"]


def test_a_disabled_event_is_not_sent(receiver) -> None:
    settings = NotificationSettings(webhooks=webhooks(receiver.url), events=["run_failed"])

    assert deliver(settings, NOTE, ENV) == []
    assert receiver.posts == []


def test_discord_text_is_cut_to_its_limit_keeping_the_next_step(receiver) -> None:
    long = Notification("run_failed", "Run failed", "x" * 5000, "NIFTY_2025-09-04", "Do this.")
    WebhookChannel(webhooks(receiver.url)[1]).send(long, ENV)

    text = receiver.posts[0][1]["content"]
    assert len(text) == 2000
    assert text.endswith("x …\nPartition: NIFTY_2025-09-04\nNext step: Do this.")


def test_a_refused_webhook_says_why_without_its_token(receiver, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.status, receiver.reply = 403, f"invalid_token {WEBHOOK_TOKEN}"
    channel = WebhookChannel(webhooks(receiver.url)[0])

    with pytest.raises(ChannelError) as raised:
        channel.send(NOTE, ENV)

    assert str(raised.value) == (
        f"slack webhook {receiver.url}/services/***: HTTP 403: invalid_token ***"
    )
    shown = "".join(traceback.format_exception(raised.value))
    assert "POST" in caplog.text  # httpx logged the request, redacted
    for secret in SECRETS:
        assert secret not in caplog.text
        assert secret not in shown


def test_an_unreachable_webhook_fails_without_its_token(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()  # nothing listens there: the connection is refused
    hook = WebhookSettings(
        format="telegram",
        url=f"http://127.0.0.1:{port}/bot{{token}}/sendMessage",
        token_env="ET_BOT_TOKEN",
        chat_id="1",
    )
    settings = NotificationSettings(webhooks=[hook])

    (failure,) = deliver(settings, NOTE, ENV)

    assert failure.startswith(
        f"telegram webhook http://127.0.0.1:{port}/bot***/sendMessage: ConnectError"
    )
    for secret in SECRETS:
        assert secret not in failure
        assert secret not in caplog.text


def test_a_missing_variable_is_named(receiver) -> None:
    (failure,) = deliver(NotificationSettings(webhooks=webhooks(receiver.url)[:1]), NOTE, {})

    assert failure == (
        f"slack webhook {receiver.url}/services/***: environment variable ET_SLACK_TOKEN is not set"
    )
    assert receiver.posts == []


def test_a_wrong_smtp_password_is_not_repeated(smtp_server, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-pass-77aa"
    channel = EmailChannel(email(smtp_server.port))

    with pytest.raises(ChannelError) as raised:
        channel.send(NOTE, {"ET_SMTP_PASSWORD": wrong})
    shown = "".join(traceback.format_exception(raised.value))

    assert str(raised.value) == (
        f"email via 127.0.0.1:{smtp_server.port} (none): SMTPAuthenticationError: "
        "535 5.7.8 Authentication credentials invalid"
    )
    assert smtp_server.messages == []
    for secret in (*SECRETS, wrong):
        assert secret not in shown
        assert secret not in caplog.text


def test_one_failed_channel_does_not_stop_the_others(receiver, smtp_server) -> None:
    settings = NotificationSettings(
        webhooks=webhooks(receiver.url)[:1], email=email(smtp_server.port)
    )

    failures = deliver(settings, NOTE, {"ET_SMTP_PASSWORD": SMTP_PASSWORD})

    assert failures == [
        f"slack webhook {receiver.url}/services/***: environment variable ET_SLACK_TOKEN is not set"
    ]
    assert [m["Subject"] for m in smtp_server.messages] == [NOTE.subject]
