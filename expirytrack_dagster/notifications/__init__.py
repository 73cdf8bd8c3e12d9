"""Notifications: messages about runs, checks, the Upstox token and new partitions, sent by sensors.

Configured under ``notifications:`` in ``data/expirytrack.yaml`` (see ``settings``); the sensors
are added to the definitions only when at least one channel (a webhook or email) is configured.
"""

from expirytrack_dagster.notifications.sensors import notification_sensors
from expirytrack_dagster.notifications.settings import NotificationSettings, notification_settings

__all__ = ["NotificationSettings", "notification_sensors", "notification_settings"]
