"""A notification's log lines, for the admin page: what `notifyctl logs --correlation-id <its
correlation id> --notification-id <its id>` prints."""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from datetime import datetime, timedelta

from notification_service.domain.model import Notification
from notification_service.ports import LogLine, LogLines

# Lines are read from a little before the notification was accepted (clocks of functions differ).
CLOCK_SLACK = timedelta(minutes=1)


@dataclass(frozen=True)
class NotificationLogs:
    lines: list[LogLine]
    command: str  # the same query on the command line


def logs_of(notification: Notification, source: LogLines, now: datetime) -> NotificationLogs:
    since = notification.created_at - CLOCK_SLACK
    command = (
        f"notifyctl logs --correlation-id {shlex.quote(notification.correlation_id)} "
        f"--notification-id {shlex.quote(notification.id)} --since {since_argument(now - since)}"
    )
    lines = source.for_notification(notification.id, notification.correlation_id, since)
    return NotificationLogs(lines, command)


def since_argument(span: timedelta) -> str:
    """The shortest `--since` (30s, 10m, 2h, 1d) that reaches back at least `span`."""
    seconds = max(1, math.ceil(span.total_seconds()))
    for unit, size in (("s", 1), ("m", 60), ("h", 3600)):
        if seconds <= 59 * size:
            return f"{math.ceil(seconds / size)}{unit}"
    return f"{math.ceil(seconds / 86400)}d"
