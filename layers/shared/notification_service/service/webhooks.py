"""Telling a notification's callback_url that it reached a terminal status: one signed POST per event,
retried with backoff through the webhook queue, each attempt written to the notification's history.

The event is built from the record as it stands, under the id `event_id(notification, status)`, the
same for every redelivery, so a receiver can drop one it has processed. The attempt number comes
from that history, not from the message, so a message the sweeper sent again continues the count.
An event is settled by its last attempt: delivered (2xx), refused for good (a 4xx other than
408/429, a redirect, an address that is not public), or out of attempts; settling clears what the
record owes. A webhook's failure never changes the notification's own status.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from notification_service.clock import isoformat
from notification_service.domain.model import Notification, WebhookAttempt
from notification_service.domain.webhook import SIGNATURE_HEADER, event_id, sign
from notification_service.errors import NotificationNotFound
from notification_service.ports import WebhookMessage, WebhookQueue, WebhookRecords

logger = Logger(child=True)
EVENT_ID_HEADER = "X-Event-Id"
MAX_BACKOFF_SECONDS = 900  # one SQS delay


class WebhookOutcome(StrEnum):
    DELIVERED = "delivered"
    RETRYING = "retrying"
    GAVE_UP = "gave_up"
    DROPPED = "dropped"  # nothing to send: no such record, no callback_url, or already settled


class PostResult(Protocol):
    """What a POST to the callback_url came to (adapters/webhook_sender.py's WebhookResult)."""

    @property
    def delivered(self) -> bool: ...
    @property
    def status_code(self) -> int | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def retryable(self) -> bool: ...
    @property
    def duration_ms(self) -> float: ...


class WebhookPoster(Protocol):
    def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> PostResult: ...


@dataclass(frozen=True)
class _NotSent:
    error: str
    delivered: bool = False
    status_code: int | None = None
    retryable: bool = False
    duration_ms: float = 0


def event_body(notification: Notification, status: str, created: datetime) -> dict[str, Any]:
    """The JSON a receiver gets: the notification's id, status, channel used and attempts."""
    return {
        "id": event_id(notification.id, status),
        "type": f"notification.{status}",
        "created": int(created.timestamp()),
        "data": {
            "id": notification.id,
            "status": status,
            "channel_used": notification.channel_used.value if notification.channel_used else None,
            "status_reason": notification.status_reason,
            "correlation_id": notification.correlation_id,
            "metadata": notification.metadata,
            "attempts": [
                {
                    "round": a.round,
                    "channel": a.channel.value,
                    "outcome": a.outcome.value,
                    "error": a.error,
                    "at": isoformat(a.finished_at),
                }
                for a in notification.attempts
            ],
        },
    }


def backoff_seconds(attempt: int, base: int = 10) -> int:
    """Before attempt n+1: base, 3 x base, 9 x base, ... (10 s, 30 s, 90 s, ...) at most 15 minutes."""
    return int(min(MAX_BACKOFF_SECONDS, base * 3 ** (attempt - 1)))


class WebhookService:
    def __init__(
        self,
        records: WebhookRecords,
        queue: WebhookQueue,
        poster: WebhookPoster,
        secret_for: Callable[[str], str | None],
        now: Callable[[], datetime],
        max_attempts: int,
        grace: timedelta,
        backoff_base_seconds: int = 10,
    ) -> None:
        self._backoff_base = backoff_base_seconds
        self._records = records
        self._queue = queue
        self._poster = poster
        self._secret_for = secret_for
        self._now = now
        self._max_attempts = max_attempts
        self._grace = grace

    def deliver(self, message: WebhookMessage) -> WebhookOutcome:
        try:
            notification = self._records.get(message.notification_id)
        except NotificationNotFound:
            return WebhookOutcome.DROPPED
        url = notification.callback_url
        the_event = event_id(notification.id, message.status)
        earlier = [w for w in notification.webhooks if w.event_id == the_event]
        if url is None or any(w.final for w in earlier):
            return WebhookOutcome.DROPPED
        attempt = len(earlier) + 1
        started = self._now()
        secret = self._secret_for(notification.owner)
        if secret is None:
            result: PostResult = _NotSent("no webhook secret is configured")
        else:
            body = json.dumps(event_body(notification, message.status, started), separators=(",", ":"))
            raw = body.encode()
            headers = {
                SIGNATURE_HEADER: sign(secret, raw, int(started.timestamp())),
                EVENT_ID_HEADER: the_event,
                "X-Correlation-ID": notification.correlation_id,
            }
            result = self._poster.send(url, raw, headers)
        final = result.delivered or not result.retryable or attempt >= self._max_attempts
        delay = backoff_seconds(attempt, self._backoff_base)
        self._records.record_webhook(
            notification.id,
            WebhookAttempt(
                event_id=the_event,
                status=message.status,
                attempt=attempt,
                at=started,
                delivered=result.delivered,
                status_code=result.status_code,
                error=result.error,
                duration_ms=result.duration_ms,
                final=final,
            ),
            None if final else self._now() + timedelta(seconds=delay) + self._grace,
        )
        log_keys = {
            "notification_id": notification.id,
            "event_id": the_event,
            "status": message.status,
            "attempt": attempt,
            "status_code": result.status_code,
            "error": result.error,
        }
        if result.delivered:
            logger.info("webhook delivered", extra=log_keys)
            return WebhookOutcome.DELIVERED
        if final:
            logger.error("webhook given up", extra=log_keys)
            return WebhookOutcome.GAVE_UP
        logger.warning("webhook failed; retried later", extra={**log_keys, "retry_in_seconds": delay})
        self._queue.enqueue(
            WebhookMessage(notification.id, message.status, attempt + 1, message.correlation_id), delay
        )
        return WebhookOutcome.RETRYING
