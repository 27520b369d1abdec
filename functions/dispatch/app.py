"""DispatchFunction: runs delivery rounds for a batch of SQS messages, concurrently, and reports
the messages that should come back (partial batch response). A bad record never fails the others."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from notification_service.bootstrap import build_dispatch
from notification_service.delivery_message import DeliveryRecord
from notification_service.lazy import Lazy
from notification_service.service.dispatch import DispatchService, RoundInProgressElsewhere, RoundReleased
from pydantic import ValidationError

logger = Logger()
tracer = Tracer(patch_modules=("botocore", "httpx"))  # only what it calls: patching all costs cold start
processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
dispatcher: Lazy[DispatchService] = Lazy(build_dispatch)


async def record_handler(record: SQSRecord, lambda_context: LambdaContext | None = None) -> str:
    try:
        message = DeliveryRecord.model_validate(record.raw_event).message()  # a poison body fails alone
    except ValidationError:
        logger.error(
            "unparseable delivery message: it goes to the dead-letter queue after the redrive count",
            extra={
                "message_id": record.message_id,
                "receive_count": record.attributes.approximate_receive_count,
            },
        )
        raise
    logger.thread_safe_append_keys(
        notification_id=message.notification_id, correlation_id=message.correlation_id, round=message.round
    )
    tracer.put_annotation("notification_id", message.notification_id)
    context = lambda_context  # powertools passes it to a record handler that names it
    time_left = (lambda: context.get_remaining_time_in_millis() / 1000) if context is not None else None
    try:
        report = await dispatcher.get().run(message, time_left)
    except RoundInProgressElsewhere:
        logger.info("round in progress in another worker; the message comes back later")
        raise
    except RoundReleased:
        logger.warning("round released for lack of time; the message comes back (or the sweeper's)")
        raise
    except Exception:
        logger.exception(
            "delivery round failed; the message will come back",
            extra={"receive_count": record.attributes.approximate_receive_count},
        )
        raise
    tracer.put_annotation("outcome", report.outcome.value)
    if report.channel is not None:
        tracer.put_annotation("channel", report.channel.value)
    return report.outcome.value


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    dispatcher.get()  # cold start: settings and clients before the batch runs
    return async_process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
