"""An SQS event source mapping, as Lambda runs one: long-poll the queue, hand the batch to the
function as a real SQS event, delete what succeeded, leave the reported failures to come back after
their visibility timeout (and, after maxReceiveCount, to the DLQ)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from infra.background import BackgroundLoop
from infra.sam_template import EventSource

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

logger = Logger(service="local-stack")
LONG_POLL_SECONDS = 1  # short enough that Ctrl-C stops the poller promptly


def to_sqs_event(messages: list[MessageTypeDef], queue_arn: str, region: str) -> dict[str, Any]:
    records = []
    for message in messages:
        body = message.get("Body", "")
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": body,
                "attributes": {str(k): v for k, v in message.get("Attributes", {}).items()},
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value["DataType"],
                    }
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": message.get("MD5OfBody")
                or hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


def failed_message_ids(result: Any, event: dict[str, Any], reports_failures: bool) -> set[str]:
    """The messages to leave on the queue: those in batchItemFailures, or every one when the function
    raised or answered something Lambda would treat as a failed batch."""
    every = {r["messageId"] for r in event["Records"]}
    if not reports_failures:
        return set()
    if not isinstance(result, dict):
        return set()
    failures = result.get("batchItemFailures")
    if failures is None:
        return set()
    ids = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in every:
            return every  # Lambda fails the whole batch on a malformed response
        ids.add(identifier)
    return ids


class SqsEventSource(BackgroundLoop):
    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        queue_arn: str,
        region: str,
        source: EventSource,
        invoke: Callable[[dict[str, Any]], Any],
        name: str = "poller",
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._region = region
        self._source = source
        self._invoke = invoke
        super().__init__(name)
        self.batches = 0  # invocations, the messages they carried and the time they took
        self.messages = 0
        self.invoke_seconds = 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except (ClientError, BotoCoreError) as exc:
                logger.warning("polling the queue failed; trying again", extra={"error": str(exc)})
                self._stop.wait(1)
            except Exception:  # never let the poller die silently while the API keeps accepting
                logger.exception("the event source failed unexpectedly; polling again")
                self._stop.wait(1)

    def poll_once(self) -> int:
        messages = self._receive()
        if not messages:
            return 0
        event = to_sqs_event(messages, self._queue_arn, self._region)
        started = time.perf_counter()
        try:
            result = self._invoke(event)
            failed = failed_message_ids(result, event, self._source.report_batch_item_failures)
        except Exception:
            logger.exception("the function raised: the whole batch comes back after its visibility timeout")
            failed = {m["MessageId"] for m in messages}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        self.batches += 1
        self.messages += len(messages)
        self.invoke_seconds += time.perf_counter() - started
        return len(messages)

    def _receive(self) -> list[MessageTypeDef]:
        wanted = self._source.batch_size
        messages: list[MessageTypeDef] = []
        window_ends = time.monotonic() + self._source.batching_window_seconds
        while len(messages) < wanted and not self._stop.is_set():
            got = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=min(10, wanted - len(messages)),
                WaitTimeSeconds=LONG_POLL_SECONDS if not messages else 0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            messages.extend(got)
            if not got or time.monotonic() >= window_ends:
                break
        return messages
