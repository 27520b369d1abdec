"""DeliveryQueue on SQS: one message per round to run, delayed by DelaySeconds for backoff; and
WebhookQueue: one message per webhook attempt, delayed the same way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from notification_service import webhook_message
from notification_service.adapters.aws import unavailable
from notification_service.delivery_message import encode
from notification_service.domain.schedule import SQS_MAX_DELAY_SECONDS
from notification_service.ports import DeliveryMessage, WebhookMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

CORRELATION_ATTRIBUTE = "correlation_id"


def _message(body: str, correlation_id: str, delay_seconds: int) -> dict[str, Any]:
    """A message's body, its delay (SQS allows 0-900 s) and its correlation id attribute."""
    return {
        "MessageBody": body,
        "DelaySeconds": max(0, min(delay_seconds, SQS_MAX_DELAY_SECONDS)),
        "MessageAttributes": {CORRELATION_ATTRIBUTE: {"DataType": "String", "StringValue": correlation_id}},
    }


def _call(operation: Any, **kwargs: Any) -> Any:
    """An SQS call; its failure is the queue being unavailable."""
    try:
        return operation(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise unavailable(exc, "sqs") from exc


class SqsDeliveryQueue:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def enqueue(self, message: DeliveryMessage, delay_seconds: int = 0) -> None:
        _call(
            self._client.send_message,
            QueueUrl=self._url,
            **_message(encode(message), message.correlation_id, delay_seconds),
        )

    def enqueue_many(self, messages: Sequence[tuple[DeliveryMessage, int]]) -> set[str]:
        """SendMessageBatch, 10 at a time: the notification ids whose message was NOT sent."""
        failed: set[str] = set()
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries: list[Any] = [
                {"Id": str(number), **_message(encode(message), message.correlation_id, delay)}
                for number, (message, delay) in enumerate(chunk)
            ]
            try:
                answer = self._client.send_message_batch(QueueUrl=self._url, Entries=entries)
            except (ClientError, BotoCoreError):
                failed |= {message.notification_id for message, _ in chunk}
                continue
            failed |= {chunk[int(f["Id"])][0].notification_id for f in answer.get("Failed", [])}
        return failed

    def check(self) -> None:
        _call(self._client.get_queue_attributes, QueueUrl=self._url, AttributeNames=["QueueArn"])


class SqsWebhookQueue:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def enqueue(self, message: WebhookMessage, delay_seconds: int = 0) -> None:
        _call(
            self._client.send_message,
            QueueUrl=self._url,
            **_message(webhook_message.encode(message), message.correlation_id, delay_seconds),
        )
