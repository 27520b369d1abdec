"""WebhookFunction: tells callback URLs that their notifications reached a terminal status, one SQS
message per attempt (retries come back through the queue, delayed). A bad record never fails the
others; an attempt that could not be recorded or re-enqueued comes back (partial batch response)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from notification_service.bootstrap import build_webhooks
from notification_service.lazy import Lazy
from notification_service.service.webhooks import WebhookService
from notification_service.webhook_message import WebhookRecord
from pydantic import ValidationError

logger = Logger()
tracer = Tracer(patch_modules=("botocore", "httpx"))  # only what it calls: patching all costs cold start
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
webhooks: Lazy[WebhookService] = Lazy(build_webhooks)


def record_handler(record: SQSRecord) -> str:
    try:
        message = WebhookRecord.model_validate(record.raw_event).message()
    except ValidationError:
        logger.error("unparseable webhook message", extra={"message_id": record.message_id})
        raise
    logger.append_keys(
        notification_id=message.notification_id, correlation_id=message.correlation_id, event=message.status
    )
    outcome = webhooks.get().deliver(message)
    tracer.put_annotation("webhook_outcome", outcome.value)
    return outcome.value


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    webhooks.get()  # cold start: settings and clients before the batch runs
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
