"""Routing "all": every listed channel, each with its own attempts; `sent` when all delivered,
`partially_sent` when some did, `failed` when none did."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from notification_service.domain.model import Channel, Notification, Outcome, Routing, Status
from notification_service.domain.recipient import Recipient
from notification_service.domain.retry_policy import RetryPolicy
from notification_service.ports import DeliveryMessage
from notification_service.service.dispatch import DispatchOutcome, DispatchService

from infra.lambda_runtime import LocalLambdaContext
from tests.fakes import ApiFakes, FakeClock, FakeProvider, FakeQueue, FakeRepository, ok, permanent, transient
from tests.unit.test_api_handler import call, post

EVERYONE = Recipient(email="user@example.com", phone="+447911123456", telegram_chat_id="123456789")


class World:
    def __init__(self, **scripts: list[Any]) -> None:
        self.clock = FakeClock()
        self.repo = FakeRepository()
        self.queue = FakeQueue()
        self.providers = {c: FakeProvider(c, list(scripts.get(c.value, []))) for c in Channel}
        self.repo.add(
            Notification(
                id="n1",
                recipient=EVERYONE,
                message="to all",
                channels=tuple(Channel),
                correlation_id="c",
                created_at=self.clock(),
                updated_at=self.clock(),
                routing=Routing.ALL,
            )
        )
        self.service = DispatchService(
            self.repo,
            self.queue,
            dict(self.providers),
            RetryPolicy(3, 2),
            self.clock,
            "w",
            timedelta(seconds=60),
        )

    def run_until_done(self) -> list[DispatchOutcome]:
        outcomes = [asyncio.run(self.service.dispatch(DeliveryMessage("n1", 1, "c")))]
        while self.queue.sent:
            message, delay = self.queue.sent.pop(0)
            self.clock.advance(delay)
            outcomes.append(asyncio.run(self.service.dispatch(message)))
        return outcomes

    def sends(self) -> dict[str, int]:
        return {c.value: len(p.sent) for c, p in self.providers.items()}


def test_every_channel_delivering_is_sent_in_one_round() -> None:
    world = World()

    assert world.run_until_done() == [DispatchOutcome.SENT]

    record = world.repo.get("n1")
    assert record.status is Status.SENT
    assert [(a.channel, a.outcome) for a in record.attempts] == [(c, Outcome.SENT) for c in Channel]
    assert world.sends() == {"email": 1, "sms": 1, "telegram": 1}


def test_a_missing_channel_is_retried_alone_and_a_permanent_one_ends_partially_sent() -> None:
    # GIVEN email works, sms fails once then works, telegram refuses for good
    world = World(sms=[transient("twilio 500"), ok()], telegram=[permanent("403")])

    outcomes = world.run_until_done()

    record = world.repo.get("n1")
    assert outcomes[-1] is DispatchOutcome.PARTIALLY_SENT
    assert record.status is Status.PARTIALLY_SENT
    assert record.status_reason == "not delivered on telegram"
    assert outcomes == [DispatchOutcome.RETRYING, DispatchOutcome.PARTIALLY_SENT]
    assert world.sends() == {"email": 1, "sms": 2, "telegram": 1}  # email never again; telegram given up
    assert record.channel_used is Channel.EMAIL


def test_nothing_delivering_fails_after_the_rounds() -> None:
    world = World(email=[transient()], sms=[transient()], telegram=[transient()])

    outcomes = world.run_until_done()

    assert outcomes == [DispatchOutcome.RETRYING, DispatchOutcome.RETRYING, DispatchOutcome.FAILED]
    assert world.repo.get("n1").status_reason == "no channel delivered in 3 rounds"


def test_the_api_takes_routing_and_shows_it(api_fakes: ApiFakes, lambda_context: LocalLambdaContext) -> None:
    status, _, body = call(
        post({"recipient": "user@example.com", "message": "x", "routing": "all"}), lambda_context
    )
    assert status == 202
    assert api_fakes.repository.items[body["id"]].routing is Routing.ALL

    status, _, body = call(
        post({"recipient": "user@example.com", "message": "x", "routing": "some"}), lambda_context
    )
    assert (status, body["details"][0]["field"]) == (422, "routing")
