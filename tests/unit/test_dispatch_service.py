"""DispatchService: claim a round, run the fallback chain, write the result, schedule the next round."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from notification_service.domain.delivery import (
    Commit,
    DeliveryFailed,
    OutgoingMessage,
    ProviderAnswer,
    no_commit,
)
from notification_service.domain.model import (
    Channel,
    FailureKind,
    Notification,
    Outcome,
    Status,
)
from notification_service.domain.recipient import Recipient
from notification_service.domain.retry_policy import RetryPolicy
from notification_service.errors import NotificationNotFound
from notification_service.ports import DeliveryMessage, LeaseLost, Provider, RoundResult
from notification_service.service.dispatch import (
    DispatchOutcome,
    DispatchService,
    RoundInProgressElsewhere,
)

from tests.fakes import FakeClock, FakeProvider, FakeQueue, FakeRepository, ok, permanent, transient

LEASE = timedelta(seconds=120)
NOTIFICATION_ID = "n-1"
CORRELATION_ID = "corr-1"


@dataclass
class World:
    clock: FakeClock = field(default_factory=FakeClock)
    repo: FakeRepository = field(default_factory=FakeRepository)
    queue: FakeQueue = field(default_factory=FakeQueue)
    providers: dict[Channel, FakeProvider] = field(
        default_factory=lambda: {channel: FakeProvider(channel) for channel in Channel}
    )

    def service(self, providers: dict[Channel, Provider] | None = None) -> DispatchService:
        chosen: dict[Channel, Provider] = dict(self.providers) if providers is None else providers
        return DispatchService(
            repository=self.repo,
            queue=self.queue,
            providers=chosen,
            policy=RetryPolicy(3, 2),
            now=self.clock,
            worker_id="w1",
            lease=LEASE,
        )

    def script(self, channel: Channel, *outcomes: ProviderAnswer | Exception) -> None:
        self.providers[channel].script = list(outcomes)

    def all_fail(self) -> None:
        for channel in Channel:
            self.script(channel, transient(f"{channel.value} down"))

    def dispatch(
        self, round_no: int, service: DispatchService | None = None, receive_count: int = 1
    ) -> DispatchOutcome:
        message = DeliveryMessage(NOTIFICATION_ID, round_no, CORRELATION_ID, receive_count)
        return asyncio.run((service or self.service()).dispatch(message))

    def record(self) -> Notification:
        return self.repo.get(NOTIFICATION_ID)

    def calls(self) -> dict[Channel, int]:
        return {channel: len(provider.sent) for channel, provider in self.providers.items()}


@pytest.fixture
def world() -> World:
    w = World()
    w.repo.add(
        Notification(
            id=NOTIFICATION_ID,
            recipient=Recipient(
                email="user@example.com", phone="+447911123456", telegram_chat_id="123456789"
            ),
            message="Hello from notification service!",
            channels=(Channel.EMAIL, Channel.SMS, Channel.TELEGRAM),
            correlation_id=CORRELATION_ID,
            created_at=w.clock(),
            updated_at=w.clock(),
        )
    )
    return w


def test_email_succeeds(world: World) -> None:
    # WHEN round 1 runs and email works
    outcome = world.dispatch(1)

    # THEN the record is sent via email with one attempt, and nothing more is queued
    record = world.record()
    assert outcome is DispatchOutcome.SENT
    assert record.status is Status.SENT
    assert record.round == 1
    assert record.channel_used is Channel.EMAIL
    assert record.provider_message_id == "fake-email-1"
    assert [(a.round, a.channel, a.outcome) for a in record.attempts] == [(1, Channel.EMAIL, Outcome.SENT)]
    assert record.lease_owner is None
    assert record.lease_until is None
    assert world.queue.sent == []
    assert world.calls() == {Channel.EMAIL: 1, Channel.SMS: 0, Channel.TELEGRAM: 0}


def test_round_runs_under_this_workers_lease(world: World) -> None:
    # GIVEN a provider that looks at the record while it is sending
    seen: list[Notification] = []

    @dataclass
    class Peeking:
        channel: Channel

        async def send(self, message: OutgoingMessage, commit: Commit = no_commit) -> ProviderAnswer:
            await commit()
            seen.append(world.repo.get(message.notification_id))
            return ok()

    providers: dict[Channel, Provider] = {channel: Peeking(channel) for channel in Channel}

    # WHEN round 1 runs
    world.dispatch(1, world.service(providers))

    # THEN during the send the round was claimed by w1 until now + lease
    (during,) = seen
    assert during.status is Status.PROCESSING
    assert during.round == 1
    assert during.lease_owner == "w1"
    assert during.lease_until == world.clock() + LEASE


def test_email_transient_then_sms_ok(world: World) -> None:
    world.script(Channel.EMAIL, transient("smtp timeout"))

    outcome = world.dispatch(1)

    record = world.record()
    assert outcome is DispatchOutcome.SENT
    assert record.status is Status.SENT
    assert record.channel_used is Channel.SMS
    assert [(a.channel, a.outcome) for a in record.attempts] == [
        (Channel.EMAIL, Outcome.FAILED),
        (Channel.SMS, Outcome.SENT),
    ]
    assert record.attempts[0].error == "smtp timeout"
    assert world.calls()[Channel.TELEGRAM] == 0
    assert world.queue.sent == []


def test_all_fail_in_round_one_schedules_round_two(world: World) -> None:
    # GIVEN every channel fails transiently
    world.all_fail()

    # WHEN round 1 runs
    outcome = world.dispatch(1)

    # THEN the record is retrying, due in 2 s, and round 2 is queued with a 2 s delay
    record = world.record()
    assert outcome is DispatchOutcome.RETRYING
    assert record.status is Status.RETRYING
    assert record.round == 1
    assert record.next_attempt_at == world.clock() + timedelta(seconds=2)
    assert record.channel_used is None
    assert len(record.attempts) == 3
    assert world.queue.sent == [(DeliveryMessage(NOTIFICATION_ID, 2, CORRELATION_ID), 2)]


def test_three_failed_rounds_end_failed(world: World) -> None:
    # GIVEN every channel always fails transiently
    world.all_fail()

    # WHEN rounds 1, 2 and 3 run, each after its delay
    first = world.dispatch(1)
    world.clock.advance(2)
    second = world.dispatch(2)
    world.clock.advance(4)
    third = world.dispatch(3)

    # THEN the notification failed after 9 attempts, and no round 4 was queued
    record = world.record()
    assert (first, second, third) == (
        DispatchOutcome.RETRYING,
        DispatchOutcome.RETRYING,
        DispatchOutcome.FAILED,
    )
    assert record.status is Status.FAILED
    assert record.round == 3
    assert len(record.attempts) == 9
    assert [a.round for a in record.attempts] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert record.next_attempt_at is None
    assert world.queue.sent == [
        (DeliveryMessage(NOTIFICATION_ID, 2, CORRELATION_ID), 2),
        (DeliveryMessage(NOTIFICATION_ID, 3, CORRELATION_ID), 4),
    ]
    assert world.calls() == {Channel.EMAIL: 3, Channel.SMS: 3, Channel.TELEGRAM: 3}


def test_duplicate_message_after_sent_is_dropped_without_sending_again(world: World) -> None:
    # GIVEN round 1 has already sent the notification
    assert world.dispatch(1) is DispatchOutcome.SENT
    writes = world.repo.writes

    # WHEN the same round-1 message is delivered again
    outcome = world.dispatch(1)

    # THEN it is dropped: no second send, no write, nothing queued
    assert outcome is DispatchOutcome.DROPPED
    assert world.calls() == {Channel.EMAIL: 1, Channel.SMS: 0, Channel.TELEGRAM: 0}
    assert world.repo.writes == writes
    assert len(world.record().attempts) == 1
    assert world.queue.sent == []


def test_live_lease_elsewhere_raises_so_the_message_comes_back(world: World) -> None:
    # GIVEN another worker has claimed round 1 and its lease is live
    now = world.clock()
    world.repo.claim_round(NOTIFICATION_ID, 1, "other", now, now + LEASE)
    world.clock.advance(30)

    # WHEN / THEN this worker refuses the message, and sends nothing
    with pytest.raises(RoundInProgressElsewhere, match="round 1 of n-1"):
        world.dispatch(1)
    assert world.calls() == {Channel.EMAIL: 0, Channel.SMS: 0, Channel.TELEGRAM: 0}
    assert world.record().lease_owner == "other"


def test_expired_lease_elsewhere_is_reclaimed(world: World) -> None:
    # GIVEN another worker claimed round 1 and died: its lease has expired
    now = world.clock()
    world.repo.claim_round(NOTIFICATION_ID, 1, "other", now, now + LEASE)
    world.clock.advance(LEASE.total_seconds() + 1)

    # WHEN this worker gets the round-1 message
    outcome = world.dispatch(1)

    # THEN it reclaims the round and sends
    record = world.record()
    assert outcome is DispatchOutcome.SENT
    assert record.status is Status.SENT
    assert record.round == 1
    assert record.lease_owner is None
    assert world.calls()[Channel.EMAIL] == 1


def test_message_at_the_exact_lease_expiry_is_not_dropped(world: World) -> None:
    # GIVEN another worker claimed round 1 and died; the clock is exactly at its lease's end
    now = world.clock()
    world.repo.claim_round(NOTIFICATION_ID, 1, "other", now, now + LEASE)
    world.clock.advance(LEASE.total_seconds())

    # WHEN / THEN the lease is over: this worker reclaims the round and delivers it
    assert world.dispatch(1) is DispatchOutcome.SENT


def test_round_one_message_when_retrying_requeues_round_two_with_remaining_delay(world: World) -> None:
    # GIVEN round 1 failed and the record is retrying at round 1, due in 2 s
    world.all_fail()
    assert world.dispatch(1) is DispatchOutcome.RETRYING
    world.queue.sent.clear()
    world.clock.advance(1)

    # WHEN the round-1 message comes back after a failure (the round-2 enqueue may have been lost)
    outcome = world.dispatch(1, receive_count=2)

    # THEN round 2 is queued again with the time left until it is due, and nothing is sent
    assert outcome is DispatchOutcome.REQUEUED_NEXT_ROUND
    assert world.queue.sent == [(DeliveryMessage(NOTIFICATION_ID, 2, CORRELATION_ID), 1)]
    assert world.calls() == {Channel.EMAIL: 1, Channel.SMS: 1, Channel.TELEGRAM: 1}
    assert world.record().status is Status.RETRYING


def test_a_first_delivery_duplicate_of_a_finished_round_is_dropped(world: World) -> None:
    # GIVEN round 1 ended retrying and its round-2 message is queued
    world.all_fail()
    world.dispatch(1)
    queued = len(world.queue.sent)
    # WHEN a plain SQS duplicate of the round-1 message arrives (first receive)
    # THEN it is dropped: duplicates do not multiply into extra round-2 messages
    assert world.dispatch(1) is DispatchOutcome.DROPPED
    assert len(world.queue.sent) == queued


def test_requeue_after_the_due_time_has_no_delay(world: World) -> None:
    world.all_fail()
    world.dispatch(1)
    world.queue.sent.clear()
    world.clock.advance(60)

    assert world.dispatch(1, receive_count=2) is DispatchOutcome.REQUEUED_NEXT_ROUND
    assert world.queue.sent == [(DeliveryMessage(NOTIFICATION_ID, 2, CORRELATION_ID), 0)]


def test_provider_exception_is_a_transient_failure_and_the_next_channel_is_tried(world: World) -> None:
    # GIVEN the email provider raises instead of answering
    world.script(Channel.EMAIL, RuntimeError("boom"))

    # WHEN round 1 runs
    outcome = world.dispatch(1)

    # THEN email counts as a transient failure and SMS delivers
    record = world.record()
    assert outcome is DispatchOutcome.SENT
    assert record.channel_used is Channel.SMS
    email = record.attempts[0]
    assert email.outcome is Outcome.FAILED
    assert email.failure_kind is FailureKind.TRANSIENT
    assert email.error == "email provider error: RuntimeError"


def test_lease_lost_while_completing_drops_the_result(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the result write finds the lease gone, and every channel fails (a retry would be queued)
    def lease_lost(
        notification_id: str, round_no: int, owner: str, result: RoundResult, now: datetime
    ) -> Notification:
        raise LeaseLost(notification_id)

    monkeypatch.setattr(world.repo, "complete_round", lease_lost)
    world.all_fail()

    # WHEN round 1 runs
    outcome = world.dispatch(1)

    # THEN the message is dropped and no next round is queued by this worker; only the attempts
    # written with each later send's intent are on the record
    assert outcome is DispatchOutcome.DROPPED
    assert world.queue.sent == []
    assert [a.channel for a in world.record().attempts] == [Channel.EMAIL, Channel.SMS]


def test_missing_provider_is_a_permanent_failure(world: World) -> None:
    # GIVEN no provider for email
    providers: dict[Channel, Provider] = {
        Channel.SMS: world.providers[Channel.SMS],
        Channel.TELEGRAM: world.providers[Channel.TELEGRAM],
    }

    # WHEN round 1 runs
    outcome = world.dispatch(1, world.service(providers))

    # THEN email is recorded as failed permanently and SMS delivers
    record = world.record()
    assert outcome is DispatchOutcome.SENT
    email = record.attempts[0]
    assert email.channel is Channel.EMAIL
    assert email.outcome is Outcome.FAILED
    assert email.failure_kind is FailureKind.PERMANENT
    assert email.error == "no provider configured for email"
    assert record.channel_used is Channel.SMS


def test_unknown_notification_propagates_not_found(world: World) -> None:
    service = world.service()

    with pytest.raises(NotificationNotFound):
        asyncio.run(service.dispatch(DeliveryMessage("missing", 1, CORRELATION_ID)))
    assert world.queue.sent == []


def test_permanent_email_failure_is_skipped_in_round_two(world: World) -> None:
    # GIVEN email fails permanently and the others transiently in round 1
    world.script(Channel.EMAIL, permanent("mailbox does not exist"))
    world.script(Channel.SMS, transient("carrier busy"), ok())
    world.script(Channel.TELEGRAM, transient("bot api 502"))
    assert world.dispatch(1) is DispatchOutcome.RETRYING

    # WHEN round 2 runs after its delay
    world.clock.advance(2)
    outcome = world.dispatch(2)

    # THEN email was not asked again: it is skipped, and SMS delivers
    record = world.record()
    assert outcome is DispatchOutcome.SENT
    assert world.calls() == {Channel.EMAIL: 1, Channel.SMS: 2, Channel.TELEGRAM: 1}
    round_two = [a for a in record.attempts if a.round == 2]
    assert [(a.channel, a.outcome) for a in round_two] == [
        (Channel.EMAIL, Outcome.SKIPPED),
        (Channel.SMS, Outcome.SENT),
    ]
    assert round_two[0].error == "failed permanently in an earlier round"


def test_every_channel_failing_permanently_fails_in_round_one(world: World) -> None:
    for channel in Channel:
        world.script(channel, DeliveryFailed.permanent(f"{channel.value} rejected"))

    outcome = world.dispatch(1)

    assert outcome is DispatchOutcome.FAILED
    assert world.record().status is Status.FAILED
    assert world.queue.sent == []


def test_stale_message_is_dropped(world: World) -> None:
    # GIVEN round 1 failed and round 2 is being worked on by another worker
    world.all_fail()
    world.dispatch(1)
    world.clock.advance(2)
    now = world.clock()
    world.repo.claim_round(NOTIFICATION_ID, 2, "other", now, now + LEASE)
    world.queue.sent.clear()

    # WHEN a late round-1 message arrives
    outcome = world.dispatch(1)

    # THEN it is dropped without sending or queueing
    assert outcome is DispatchOutcome.DROPPED
    assert world.calls() == {Channel.EMAIL: 1, Channel.SMS: 1, Channel.TELEGRAM: 1}
    assert world.queue.sent == []


def test_out_of_order_message_is_dropped(world: World) -> None:
    outcome = world.dispatch(3)

    assert outcome is DispatchOutcome.DROPPED
    assert world.record().status is Status.PENDING
    assert world.calls() == {Channel.EMAIL: 0, Channel.SMS: 0, Channel.TELEGRAM: 0}
