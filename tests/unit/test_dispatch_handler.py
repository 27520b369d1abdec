"""DispatchFunction's handler on SQS events, with in-memory fakes behind it."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from notification_service.domain.delivery import Commit, Delivered, OutgoingMessage, ProviderAnswer, no_commit
from notification_service.domain.model import Channel, Notification, Status
from notification_service.domain.recipient import Recipient
from notification_service.domain.retry_policy import RetryPolicy
from notification_service.ports import Provider
from notification_service.service.dispatch import DispatchService

from infra.lambda_runtime import LocalLambdaContext
from tests.conftest import load_event
from tests.fakes import FakeClock, FakeProvider, FakeQueue, FakeRepository
from tests.handlers import load_function_module

dispatch = load_function_module("dispatch")


class Fakes:
    def __init__(self, providers: dict[Channel, Provider] | None = None) -> None:
        self.repository = FakeRepository()
        self.queue = FakeQueue()
        self.clock = FakeClock()
        self.providers: dict[Channel, Provider] = providers or {c: FakeProvider(c) for c in Channel}

    def install(self) -> None:
        dispatch.dispatcher.set(
            DispatchService(
                self.repository,
                self.queue,
                self.providers,
                RetryPolicy(3, 2),
                self.clock,
                "worker-1",
                timedelta(seconds=120),
            )
        )

    def pending(self, notification_id: str) -> Notification:
        n = Notification(
            id=notification_id,
            recipient=Recipient(email="user@example.com", phone="+447911123456"),
            message="hi",
            channels=(Channel.EMAIL, Channel.SMS),
            correlation_id=f"cid-{notification_id}",
            created_at=self.clock(),
            updated_at=self.clock(),
        )
        self.repository.add(n)
        return n


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    f = Fakes()
    f.install()
    yield f
    dispatch.dispatcher.set(None)


def sqs_event(*bodies: str) -> dict[str, Any]:
    template = load_event("sqs_dispatch.json")["Records"][0]
    records = []
    for number, body in enumerate(bodies):
        record = copy.deepcopy(template)
        record["messageId"] = f"message-{number}"
        record["body"] = body
        records.append(record)
    return {"Records": records}


def message(notification_id: str, round_no: int = 1) -> str:
    return json.dumps({"notification_id": notification_id, "round": round_no, "correlation_id": "cid"})


def test_a_round_is_run_and_acknowledged(fakes: Fakes, lambda_context: LocalLambdaContext) -> None:
    fakes.pending("n1")
    result = dispatch.lambda_handler(sqs_event(message("n1")), lambda_context)
    assert result == {"batchItemFailures": []}
    record = fakes.repository.items["n1"]
    assert record.status is Status.SENT
    assert record.channel_used is Channel.EMAIL


def test_only_the_bad_records_of_a_batch_fail(fakes: Fakes, lambda_context: LocalLambdaContext) -> None:
    # GIVEN a batch with a good message, an unparseable one, one with a missing field and an unknown id
    fakes.pending("good")
    event = sqs_event(message("good"), "not json", json.dumps({"round": 1}), message("unknown"))
    # WHEN the batch is handled
    result = dispatch.lambda_handler(event, lambda_context)
    # THEN the good one is delivered and only the three bad ones come back
    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == [
        "message-1",
        "message-2",
        "message-3",
    ]
    assert fakes.repository.items["good"].status is Status.SENT


def test_a_duplicate_message_is_acknowledged_without_a_second_send(
    fakes: Fakes, lambda_context: LocalLambdaContext
) -> None:
    fakes.pending("n1")
    dispatch.lambda_handler(sqs_event(message("n1")), lambda_context)
    result = dispatch.lambda_handler(sqs_event(message("n1"), message("n1")), lambda_context)
    assert result == {"batchItemFailures": []}
    email = fakes.providers[Channel.EMAIL]
    assert isinstance(email, FakeProvider)
    assert len(email.sent) == 1


def test_the_sample_event_for_an_unknown_notification_comes_back(
    fakes: Fakes, lambda_context: LocalLambdaContext
) -> None:
    result = dispatch.lambda_handler(load_event("sqs_dispatch.json"), lambda_context)
    assert result == {"batchItemFailures": [{"itemIdentifier": "059f36b4-87a3-44ab-83d2-661975830a7d"}]}


class BarrierProvider:
    """Completes only once `size` sends are in progress at the same time: a sequential batch never
    gets there (and fails on the safety timeout instead of hanging)."""

    def __init__(self, channel: Channel, size: int) -> None:
        self.channel = channel
        self.size = size
        self.in_progress = 0
        self.most_at_once = 0
        self.everyone_here: asyncio.Event | None = None

    async def send(self, message: OutgoingMessage, commit: Commit = no_commit) -> ProviderAnswer:
        await commit()
        if self.everyone_here is None:
            self.everyone_here = asyncio.Event()
        self.in_progress += 1
        self.most_at_once = max(self.most_at_once, self.in_progress)
        if self.in_progress == self.size:
            self.everyone_here.set()
        await asyncio.wait_for(self.everyone_here.wait(), timeout=30)
        return Delivered(f"barrier-{message.notification_id}")


def test_the_records_of_a_batch_are_delivered_concurrently(lambda_context: LocalLambdaContext) -> None:
    barrier = BarrierProvider(Channel.EMAIL, size=10)
    fakes = Fakes(providers={Channel.EMAIL: barrier, Channel.SMS: FakeProvider(Channel.SMS)})
    fakes.install()
    try:
        ids = [f"n{i}" for i in range(10)]
        for notification_id in ids:
            fakes.pending(notification_id)
        result = dispatch.lambda_handler(sqs_event(*(message(i) for i in ids)), lambda_context)
    finally:
        dispatch.dispatcher.set(None)
    assert result == {"batchItemFailures": []}
    assert barrier.most_at_once == 10
    assert {fakes.repository.items[i].status for i in ids} == {Status.SENT}


def test_the_trace_is_annotated_with_the_outcome_and_the_channel_that_delivered(
    fakes: Fakes, lambda_context: LocalLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    annotations: list[tuple[str, str]] = []
    monkeypatch.setattr(
        dispatch.tracer, "put_annotation", lambda key, value: annotations.append((key, value))
    )
    n = fakes.pending("n1")

    dispatch.lambda_handler(sqs_event(message(n.id)), lambda_context)

    assert annotations == [("notification_id", "n1"), ("outcome", "sent"), ("channel", "email")]
