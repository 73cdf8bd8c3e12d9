"""The notifications section: accepted when right, one SettingsError line naming the key when not."""

from __future__ import annotations

import pytest

from expirytrack_dagster.definitions import build_definitions
from expirytrack_dagster.notifications.settings import notification_settings
from expirytrack_dagster.settings import SettingsError

SOURCE = "data/expirytrack.yaml"
SLACK = {
    "format": "slack",
    "url": "https://hooks.slack.com/services/{token}",
    "token_env": "ET_SLACK_TOKEN",
}
EMAIL = {
    "host": "smtp.example.com",
    "username": "me@example.com",
    "password_env": "ET_SMTP_PASSWORD",
    "sender": "me@example.com",
    "recipients": ["me@example.com"],
}


def test_a_full_section_is_read() -> None:
    settings = notification_settings(
        {
            "notifications": {
                "token_warning_hours": 6,
                "ui_url": "http://localhost:3000/",
                "events": ["run_failed", "token_deadline"],
                "webhooks": [SLACK],
                "email": EMAIL,
            }
        },
        SOURCE,
    )

    assert settings.events == ["run_failed", "token_deadline"]
    assert settings.ui_url == "http://localhost:3000"
    assert settings.webhooks[0].token_env == "ET_SLACK_TOKEN"
    assert settings.email is not None and settings.email.port == 587
    assert settings.email.security == "starttls"


def test_no_section_means_no_channels() -> None:
    assert not notification_settings({}, SOURCE).has_channels


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"evnts": []},
            "data/expirytrack.yaml: unknown key 'notifications.evnts' (did you mean 'events'?); "
            "allowed: events, token_warning_hours, ui_url, webhooks, email",
        ),
        (
            {"events": ["run_failed", "lunch"]},
            "data/expirytrack.yaml: notifications.events = ['run_failed', 'lunch']: must be a "
            "list of run_failed, partition_collected, blocking_check_failed, token_deadline, "
            "new_partition",
        ),
        (
            {"token_warning_hours": 0},
            "data/expirytrack.yaml: notifications.token_warning_hours = 0: must be a number of "
            "hours > 0",
        ),
        (
            {"webhooks": [SLACK | {"formt": "slack"}]},
            "data/expirytrack.yaml: unknown key 'notifications.webhooks[0].formt' (did you mean "
            "'format'?); allowed: format, url, token_env, chat_id, timeout_s",
        ),
        (
            {"webhooks": [SLACK | {"format": "teams"}]},
            "data/expirytrack.yaml: notifications.webhooks[0].format = 'teams': must be one of "
            "slack, discord, telegram",
        ),
        (
            {"webhooks": [{"format": "slack", "url": "https://hooks.slack.com/services/{token}"}]},
            "data/expirytrack.yaml: notifications.webhooks[0].token_env = None: the url has "
            "{token}: name the variable that holds it",
        ),
        (
            {"webhooks": [SLACK | {"token_env": "MY-TOKEN"}]},
            "data/expirytrack.yaml: notifications.webhooks[0].token_env = 'MY-TOKEN': must be "
            "an environment variable name (letters, digits, _)",
        ),
        (
            {
                "webhooks": [
                    {
                        "format": "telegram",
                        "url": "https://api.telegram.org/bot{token}/sendMessage",
                        "token_env": "T",
                    }
                ]
            },
            "data/expirytrack.yaml: notifications.webhooks[0].chat_id = None: a telegram "
            "webhook needs the chat to post to",
        ),
        (
            {"email": EMAIL | {"security": "tls"}},
            "data/expirytrack.yaml: notifications.email.security = 'tls': must be one of "
            "starttls, ssl, none",
        ),
        (
            {"email": {k: v for k, v in EMAIL.items() if k != "password_env"}},
            "data/expirytrack.yaml: notifications.email.password_env = None: a username needs "
            "the variable holding its password",
        ),
        (
            {"email": EMAIL | {"recipients": []}},
            "data/expirytrack.yaml: notifications.email.recipients = []: must be a non-empty "
            "list of email addresses",
        ),
        (
            {"webhooks": SLACK},
            "data/expirytrack.yaml: notifications.webhooks = {'format': 'slack', 'url': "
            "'https://hooks.slack.com/services/{token}', 'token_env': 'ET_SLACK_TOKEN'}: must be "
            "a list of webhooks",
        ),
    ],
)
def test_a_wrong_setting_is_one_line(section: dict, message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        notification_settings({"notifications": section}, SOURCE)

    assert str(raised.value) == message
    assert "\n" not in str(raised.value)


def test_the_sensors_join_the_definitions_with_a_channel(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("EXPIRYTRACK_CREDENTIALS_DIR", str(tmp_path / "creds"))
    with_channel = build_definitions({"notifications": {"webhooks": [SLACK]}})
    without = build_definitions({})

    names = {s.name for s in with_channel.get_repository_def().sensor_defs}
    assert {
        "notify_run_failure",
        "notify_partition_collected",
        "notify_blocking_check_failed",
        "notify_token_deadline",
        "notify_new_partition",
    } <= names
    assert not any(s.name.startswith("notify_") for s in without.get_repository_def().sensor_defs)
