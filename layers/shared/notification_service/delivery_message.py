"""The delivery queue's message: its JSON body, written by the SQS adapter and read (with powertools
Parser) by the dispatch function."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import BaseModel, Field, Json

from notification_service.ports import DeliveryMessage


class DeliveryBody(BaseModel):
    notification_id: str = Field(min_length=1, max_length=64)
    round: int = Field(ge=1, le=100)
    correlation_id: str | None = Field(default=None, max_length=128)


class DeliveryRecord(SqsRecordModel):
    body: Json[DeliveryBody]

    def message(self) -> DeliveryMessage:
        return DeliveryMessage(
            notification_id=self.body.notification_id,
            round=self.body.round,
            correlation_id=self.body.correlation_id or self.messageId,
            receive_count=int(self.attributes.ApproximateReceiveCount),
        )


def encode(message: DeliveryMessage) -> str:
    return DeliveryBody(
        notification_id=message.notification_id, round=message.round, correlation_id=message.correlation_id
    ).model_dump_json()
