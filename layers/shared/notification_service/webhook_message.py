"""The webhook queue's message: its JSON body, written by the SQS adapter and read (with powertools
Parser) by the webhook function."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import BaseModel, Field, Json

from notification_service.ports import WebhookMessage


class WebhookBody(BaseModel):
    notification_id: str = Field(min_length=1, max_length=64)
    status: str = Field(min_length=1, max_length=32)
    attempt: int = Field(ge=0, le=100)
    correlation_id: str | None = Field(default=None, max_length=128)


class WebhookRecord(SqsRecordModel):
    body: Json[WebhookBody]

    def message(self) -> WebhookMessage:
        return WebhookMessage(
            notification_id=self.body.notification_id,
            status=self.body.status,
            attempt=self.body.attempt,
            correlation_id=self.body.correlation_id or self.messageId,
        )


def encode(message: WebhookMessage) -> str:
    return WebhookBody(
        notification_id=message.notification_id,
        status=message.status,
        attempt=message.attempt,
        correlation_id=message.correlation_id,
    ).model_dump_json()
