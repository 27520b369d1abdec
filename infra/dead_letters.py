"""`notifyctl dlq`: list the delivery messages that failed `maxReceiveCount` times (poison: an
unparseable body, an unknown or deleted notification) and send chosen ones back to the delivery queue.

Works against the local stack's emulator and against a deployed stack: the queues come from the
stack's outputs (DeliveryQueueUrl, DeliveryDeadLetterQueueUrl) in CloudFormation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from infra.emulator import aws_client

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

RECEIVE_ROUNDS = 20  # receives per listing: SQS hands out at most 10 messages at a time


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    body: str
    receive_count: int
    sent_at_ms: int
    receipt_handle: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "body": self.body,
            "receive_count": self.receive_count,
            "sent_at_ms": self.sent_at_ms,
        }

    def summary(self) -> str:
        try:
            data = json.loads(self.body)
            what = f"notification {data.get('notification_id', '?')} round {data.get('round', '?')}"
        except (json.JSONDecodeError, AttributeError):
            what = f"unparseable body {self.body[:60]!r}"
        return f"{self.message_id}  received {self.receive_count}x  {what}"


@dataclass(frozen=True)
class Queues:
    delivery_url: str
    dead_letter_url: str


def stack_queues(stack_name: str, endpoint_url: str | None) -> Queues:
    cloudformation = aws_client("cloudformation", endpoint_url)
    (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return Queues(outputs["DeliveryQueueUrl"], outputs["DeliveryDeadLetterQueueUrl"])


def list_dead_letters(sqs: SQSClient, dead_letter_url: str, hide_seconds: int = 0) -> list[DeadLetter]:
    """Every message on the DLQ (each received once; with hide_seconds 0 they stay visible)."""
    found: dict[str, DeadLetter] = {}
    for _ in range(RECEIVE_ROUNDS):
        got = sqs.receive_message(
            QueueUrl=dead_letter_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=max(hide_seconds, 1),
            AttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not got:
            break
        for message in got:
            attributes = message.get("Attributes", {})
            found.setdefault(
                message["MessageId"],
                DeadLetter(
                    message_id=message["MessageId"],
                    body=message.get("Body", ""),
                    receive_count=int(attributes.get("ApproximateReceiveCount", 0)),
                    sent_at_ms=int(attributes.get("SentTimestamp", 0)),
                    receipt_handle=message["ReceiptHandle"],
                ),
            )
    if hide_seconds == 0:
        for letter in found.values():  # back to visible at once: listing does not take them away
            sqs.change_message_visibility(
                QueueUrl=dead_letter_url, ReceiptHandle=letter.receipt_handle, VisibilityTimeout=0
            )
    return list(found.values())


def redrive(sqs: SQSClient, queues: Queues, message_ids: set[str] | None) -> list[DeadLetter]:
    """Send the chosen messages (all when None) back to the delivery queue, then delete them from the
    DLQ. A redriven message whose round is finished is dropped by its claim: redriving is safe."""
    moved = []
    for letter in list_dead_letters(sqs, queues.dead_letter_url, hide_seconds=30):
        if message_ids is not None and letter.message_id not in message_ids:
            sqs.change_message_visibility(
                QueueUrl=queues.dead_letter_url, ReceiptHandle=letter.receipt_handle, VisibilityTimeout=0
            )
            continue
        sqs.send_message(QueueUrl=queues.delivery_url, MessageBody=letter.body)
        sqs.delete_message(QueueUrl=queues.dead_letter_url, ReceiptHandle=letter.receipt_handle)
        moved.append(letter)
    return moved
