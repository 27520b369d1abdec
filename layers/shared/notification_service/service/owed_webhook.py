"""Sending a webhook the record already owes: the write that made the notification terminal recorded
the debt (in the sweep index), so a failed enqueue here is only logged — the sweeper sends it later."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from notification_service.errors import DependencyUnavailable
from notification_service.ports import WebhookMessage, WebhookQueue

logger = Logger(child=True)


def enqueue_owed_webhook(
    queue: WebhookQueue | None, notification_id: str, status: str, correlation_id: str, attempt: int = 1
) -> None:
    """Enqueue the webhook for `status`; never raises for a queue outage (nothing to do without a queue)."""
    if queue is None:
        return
    try:
        queue.enqueue(WebhookMessage(notification_id, status, attempt, correlation_id))
    except DependencyUnavailable:
        logger.warning(
            "webhook not enqueued; the sweeper sends it later",
            extra={"notification_id": notification_id, "status": status},
        )
