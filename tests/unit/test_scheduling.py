"""Scheduled delivery (`send_at`): accepted as `scheduled`, reached through hops of at most one SQS
delay, claimed only once due, cancellable, and repaired by the sweeper if its message is lost."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from notification_service.domain.api_keys import ANONYMOUS
from notification_service.domain.model import Channel, Status
from notification_service.domain.recipient import Recipient
from notification_service.domain.retry_policy import RetryPolicy
from notification_service.domain.schedule import hop_delay, too_far_ahead
from notification_service.domain.sweep import SweepPolicy
from notification_service.ports import DeliveryMessage
from notification_service.service.dispatch import DispatchOutcome, DispatchService
from notification_service.service.notifications import NewNotification, NotificationService
from notification_service.service.sweeper import Sweeper

from infra.lambda_runtime import LocalLambdaContext
from tests.fakes import ApiFakes, FakeProvider
from tests.unit.test_api_handler import call, post


def new(send_in: timedelta | None, fakes: ApiFakes) -> NewNotification:
    return NewNotification(
        recipient=Recipient(email="user@example.com"),
        message="later",
        channels=(Channel.EMAIL,),
        send_at=fakes.clock() + send_in if send_in is not None else None,
    )


class World:
    def __init__(self, max_delay: int = 900) -> None:
        self.fakes = ApiFakes()
        self.email = FakeProvider(Channel.EMAIL)
        self.notifications = NotificationService(
            self.fakes.repository,
            self.fakes.queue,
            self.fakes.idempotency,
            self.fakes.clock,
            max_delay_seconds=max_delay,
        )
        self.dispatch = DispatchService(
            self.fakes.repository,
            self.fakes.queue,
            {Channel.EMAIL: self.email},
            RetryPolicy(3, 2),
            self.fakes.clock,
            "w",
            timedelta(seconds=60),
            max_delay_seconds=max_delay,
        )

    def deliver_next(self) -> tuple[DispatchOutcome, int]:
        """Let the oldest queued message's delay pass, then run it."""
        message, delay = self.fakes.queue.sent.pop(0)
        self.fakes.clock.advance(delay)
        return asyncio.run(self.dispatch.dispatch(message)), delay


def test_hops_are_at_most_one_sqs_delay_and_thirty_days_is_the_limit() -> None:
    fakes = ApiFakes()
    now = fakes.clock()
    assert hop_delay(now + timedelta(minutes=40), now) == 900
    assert hop_delay(now + timedelta(seconds=10.2), now) == 11
    assert hop_delay(now - timedelta(seconds=5), now) == 0
    assert not too_far_ahead(now + timedelta(days=30), now)
    assert too_far_ahead(now + timedelta(days=30, seconds=1), now)


def test_a_notification_forty_minutes_ahead_hops_and_is_sent_when_due() -> None:
    world = World()

    receipt = world.notifications.accept(new(timedelta(minutes=40), world.fakes), "corr")

    assert receipt.status is Status.SCHEDULED
    outcomes = [world.deliver_next() for _ in range(3)]
    assert outcomes == [
        (DispatchOutcome.HOPPED, 900),
        (DispatchOutcome.HOPPED, 900),
        (DispatchOutcome.SENT, 600),
    ]
    assert len(world.email.sent) == 1
    record = world.fakes.repository.get(receipt.id)
    assert record.status is Status.SENT
    assert record.attempts[0].started_at == record.send_at  # not a second early


def test_a_past_send_at_means_now() -> None:
    world = World()

    receipt = world.notifications.accept(new(timedelta(seconds=-30), world.fakes), "corr")

    assert receipt.status is Status.PENDING
    assert world.fakes.queue.sent == [(DeliveryMessage(receipt.id, 1, "corr"), 0)]
    assert world.fakes.repository.get(receipt.id).send_at is None


def test_a_duplicate_message_of_a_scheduled_one_hops_too_and_only_one_send_happens() -> None:
    world = World(max_delay=10)
    receipt = world.notifications.accept(new(timedelta(seconds=25), world.fakes), "corr")
    world.fakes.queue.sent.append(world.fakes.queue.sent[0])  # SQS delivered it twice

    results = []
    while world.fakes.queue.sent:
        results.append(world.deliver_next())

    assert [o for o, _ in results].count(DispatchOutcome.SENT) == 1
    assert len(world.email.sent) == 1
    assert world.fakes.repository.get(receipt.id).status is Status.SENT


def test_a_cancelled_scheduled_notification_is_never_sent() -> None:
    world = World()
    receipt = world.notifications.accept(new(timedelta(minutes=20), world.fakes), "corr")

    world.notifications.cancel(receipt.id, ANONYMOUS)
    outcome, _ = world.deliver_next()

    assert outcome is DispatchOutcome.DROPPED
    assert world.email.sent == []
    assert world.fakes.queue.sent == []  # no further hop


def test_the_sweeper_repairs_a_scheduled_one_whose_message_was_lost() -> None:
    world = World()
    receipt = world.notifications.accept(new(timedelta(minutes=5), world.fakes), "corr")
    world.fakes.queue.sent.clear()  # the message chain was lost
    sweeper = Sweeper(world.fakes.repository, world.fakes.queue, SweepPolicy(), world.fakes.clock)

    world.fakes.clock.advance(5 * 60 + 59)
    assert sweeper.sweep().requeued == {}
    world.fakes.clock.advance(1)
    assert sweeper.sweep().requeued == {"scheduled": 1}
    outcome, _ = world.deliver_next()

    assert outcome is DispatchOutcome.SENT
    assert world.fakes.repository.get(receipt.id).status is Status.SENT


@pytest.mark.parametrize(
    ("send_at", "reason"),
    [
        ("2026-12-01T09:00:00", "timezone"),
        ("2099-01-01T00:00:00Z", "30 days"),
        ("tomorrow", "datetime"),
    ],
)
def test_a_bad_send_at_is_422_naming_it(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext, send_at: str, reason: str
) -> None:
    body: dict[str, Any] = {"recipient": "user@example.com", "message": "hi", "send_at": send_at}

    status, _, answer = call(post(body), lambda_context)

    assert status == 422
    (detail,) = answer["details"]
    assert detail["field"] == "send_at"
    assert reason in detail["reason"]
    assert api_fakes.repository.items == {}


def test_the_api_accepts_a_scheduled_notification_and_shows_its_send_at(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    when = (api_fakes.clock() + timedelta(hours=1)).isoformat()
    body = {"recipient": "user@example.com", "message": "hi", "send_at": when}

    status, _, answer = call(post(body), lambda_context)

    assert (status, answer["status"]) == (202, "scheduled")
    stored = api_fakes.repository.items[answer["id"]]
    assert stored.send_at == api_fakes.clock() + timedelta(hours=1)
    assert [d for _, d in api_fakes.queue.sent] == [900]
