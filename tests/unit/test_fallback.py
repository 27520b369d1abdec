"""One round of the fallback chain, and what follows it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta

from notification_service.domain.delivery import OutgoingMessage, ProviderAnswer, SendOutcome
from notification_service.domain.fallback import (
    FailedVerdict,
    RetryVerdict,
    SentVerdict,
    run_round,
    verdict,
)
from notification_service.domain.model import (
    Attempt,
    Channel,
    FailureKind,
    Notification,
    Outcome,
)
from notification_service.domain.recipient import Recipient
from notification_service.domain.retry_policy import RetryPolicy

from tests.fakes import FakeClock, FakeProvider, permanent, transient

EVERYONE = Recipient(email="user@example.com", phone="+447911123456", telegram_chat_id="123456789")
POLICY = RetryPolicy(max_rounds=3, backoff_base=2)


def make_notification(
    recipient: Recipient = EVERYONE,
    channels: tuple[Channel, ...] = (Channel.EMAIL, Channel.SMS, Channel.TELEGRAM),
    attempts: tuple[Attempt, ...] = (),
    clock: FakeClock | None = None,
) -> Notification:
    at = (clock or FakeClock())()
    return Notification(
        id="n-1",
        recipient=recipient,
        message="Hello",
        channels=channels,
        correlation_id="corr-1",
        created_at=at,
        updated_at=at,
        subject="Greetings",
        attempts=attempts,
    )


def providers_with(**scripts: list[ProviderAnswer | Exception]) -> dict[Channel, FakeProvider]:
    return {channel: FakeProvider(channel, list(scripts.get(channel.value, []))) for channel in Channel}


class TickingClock(FakeClock):
    """Moves one second after every reading, so each timestamp it hands out is distinct."""

    def __call__(self) -> datetime:
        value = self.now
        self.advance(1)
        return value


def email_failed_in_round_one(kind: FailureKind, error: str) -> Attempt:
    at = FakeClock()()
    return Attempt(1, Channel.EMAIL, Outcome.FAILED, at, at, error=error, failure_kind=kind)


def round_of(
    notification: Notification,
    providers: dict[Channel, FakeProvider],
    round_no: int = 1,
    clock: FakeClock | None = None,
) -> list[Attempt]:
    now = clock or FakeClock()

    async def send(message: OutgoingMessage, _so_far: Sequence[Attempt]) -> SendOutcome:
        return await providers[message.channel].send(message)

    return asyncio.run(run_round(notification, round_no, send, now))


def test_first_success_stops_the_round() -> None:
    # GIVEN every channel would succeed
    providers = providers_with()

    # WHEN a round runs
    attempts = round_of(make_notification(), providers)

    # THEN only email was tried, and it is recorded as sent
    assert [(a.channel, a.outcome) for a in attempts] == [(Channel.EMAIL, Outcome.SENT)]
    assert len(providers[Channel.EMAIL].sent) == 1
    assert providers[Channel.SMS].sent == []
    assert providers[Channel.TELEGRAM].sent == []


def test_outgoing_message_carries_the_notification() -> None:
    providers = providers_with()

    round_of(make_notification(), providers)

    assert providers[Channel.EMAIL].sent == [
        OutgoingMessage(
            notification_id="n-1",
            channel=Channel.EMAIL,
            address="user@example.com",
            body="Hello",
            subject="Greetings",
            correlation_id="corr-1",
        )
    ]


def test_transient_failure_falls_through_to_the_next_channel() -> None:
    # GIVEN email times out and SMS works
    providers = providers_with(email=[transient("smtp timeout")])

    # WHEN a round runs
    attempts = round_of(make_notification(), providers)

    # THEN email failed transiently, SMS sent, telegram was never asked
    assert [(a.channel, a.outcome) for a in attempts] == [
        (Channel.EMAIL, Outcome.FAILED),
        (Channel.SMS, Outcome.SENT),
    ]
    assert attempts[0].failure_kind is FailureKind.TRANSIENT
    assert attempts[0].error == "smtp timeout"
    assert providers[Channel.SMS].sent[0].address == "+447911123456"
    assert providers[Channel.TELEGRAM].sent == []


def test_permanent_failure_also_falls_through() -> None:
    providers = providers_with(email=[permanent("mailbox does not exist")])

    attempts = round_of(make_notification(), providers)

    assert attempts[0].failure_kind is FailureKind.PERMANENT
    assert attempts[0].error == "mailbox does not exist"
    assert attempts[1].outcome is Outcome.SENT


def test_channel_order_is_the_notification_order() -> None:
    providers = providers_with(telegram=[transient()])

    attempts = round_of(make_notification(channels=(Channel.TELEGRAM, Channel.EMAIL)), providers)

    assert [a.channel for a in attempts] == [Channel.TELEGRAM, Channel.EMAIL]
    assert attempts[-1].outcome is Outcome.SENT


def test_missing_address_is_skipped_without_calling_the_provider() -> None:
    # GIVEN a recipient with a phone only
    providers = providers_with()
    notification = make_notification(recipient=Recipient(phone="+447911123456"))

    # WHEN a round runs
    attempts = round_of(notification, providers)

    # THEN email is skipped (no provider call) and SMS sends
    assert attempts[0].channel is Channel.EMAIL
    assert attempts[0].outcome is Outcome.SKIPPED
    assert attempts[0].error == "recipient has no address for this channel"
    assert attempts[0].failure_kind is None
    assert providers[Channel.EMAIL].sent == []
    assert attempts[1].outcome is Outcome.SENT


def test_channel_that_failed_permanently_earlier_is_skipped() -> None:
    # GIVEN email failed permanently in round 1
    earlier = email_failed_in_round_one(FailureKind.PERMANENT, "bounced")
    providers = providers_with()

    # WHEN round 2 runs
    attempts = round_of(make_notification(attempts=(earlier,)), providers, round_no=2)

    # THEN email is skipped without a call, SMS is tried and sends
    assert attempts[0].outcome is Outcome.SKIPPED
    assert attempts[0].error == "failed permanently in an earlier round"
    assert providers[Channel.EMAIL].sent == []
    assert attempts[1].channel is Channel.SMS
    assert attempts[1].outcome is Outcome.SENT


def test_channel_that_failed_transiently_earlier_is_tried_again() -> None:
    earlier = email_failed_in_round_one(FailureKind.TRANSIENT, "timeout")
    providers = providers_with()

    attempts = round_of(make_notification(attempts=(earlier,)), providers, round_no=2)

    assert attempts[0].outcome is Outcome.SENT
    assert len(providers[Channel.EMAIL].sent) == 1


def test_attempts_carry_round_timestamps_and_provider_details() -> None:
    # GIVEN a clock that moves one second on every reading
    clock = TickingClock()
    start = clock.now
    providers = providers_with(email=[transient("busy")])

    # WHEN round 2 runs
    attempts = round_of(make_notification(), providers, round_no=2, clock=clock)

    # THEN each attempt has the round, its own start and finish, and the provider's answer
    failed, sent = attempts
    assert failed.round == 2
    assert sent.round == 2
    assert failed.started_at == start
    assert failed.finished_at == start + timedelta(seconds=1)
    assert sent.started_at == start + timedelta(seconds=2)
    assert sent.finished_at == start + timedelta(seconds=3)
    assert failed.error == "busy"
    assert failed.failure_kind is FailureKind.TRANSIENT
    assert failed.provider_message_id is None
    assert sent.provider_message_id == "fake-sms-1"
    assert sent.error is None
    assert sent.failure_kind is None


def test_skipped_attempt_starts_and_finishes_at_the_same_time() -> None:
    clock = FakeClock()
    providers = providers_with()

    attempts = round_of(make_notification(recipient=Recipient(phone="+447911123456")), providers, clock=clock)

    assert attempts[0].started_at == attempts[0].finished_at == clock.now


def test_all_channels_failing_gives_one_attempt_each() -> None:
    providers = providers_with(email=[transient()], sms=[transient()], telegram=[transient()])

    attempts = round_of(make_notification(), providers)

    assert [a.channel for a in attempts] == [Channel.EMAIL, Channel.SMS, Channel.TELEGRAM]
    assert all(a.outcome is Outcome.FAILED for a in attempts)


# --- verdict -----------------------------------------------------------------


def all_failing_round(notification: Notification, round_no: int) -> list[Attempt]:
    providers = providers_with(email=[transient()], sms=[transient()], telegram=[transient()])
    return round_of(notification, providers, round_no=round_no)


def test_verdict_sent_names_channel_and_provider_id() -> None:
    notification = make_notification()
    attempts = round_of(notification, providers_with(email=[transient()]))

    assert verdict(notification, 1, attempts, POLICY) == SentVerdict(Channel.SMS, "fake-sms-1")


def test_verdict_after_failed_round_one_retries_in_two_seconds() -> None:
    notification = make_notification()

    decision = verdict(notification, 1, all_failing_round(notification, 1), POLICY)

    assert decision == RetryVerdict(2)


def test_verdict_after_failed_round_two_retries_in_four_seconds() -> None:
    notification = make_notification()

    decision = verdict(notification, 2, all_failing_round(notification, 2), POLICY)

    assert decision == RetryVerdict(4)


def test_verdict_after_last_round_is_failed() -> None:
    notification = make_notification()

    decision = verdict(notification, 3, all_failing_round(notification, 3), POLICY)

    assert isinstance(decision, FailedVerdict)
    assert decision.reason == "all channels failed in 3 rounds"


def test_verdict_fails_at_once_when_every_channel_failed_permanently() -> None:
    # GIVEN every channel answers "this will never work"
    notification = make_notification()
    providers = providers_with(email=[permanent()], sms=[permanent()], telegram=[permanent()])
    attempts = round_of(notification, providers)

    # WHEN the verdict of round 1 is taken
    decision = verdict(notification, 1, attempts, POLICY)

    # THEN no retry is scheduled even though rounds are left
    assert decision == FailedVerdict("no channel can deliver to this recipient")


def test_verdict_fails_at_once_when_remaining_channels_have_no_address() -> None:
    # GIVEN email is the only address and it fails permanently
    notification = make_notification(recipient=Recipient(email="user@example.com"))
    attempts = round_of(notification, providers_with(email=[permanent()]))
    assert [a.outcome for a in attempts] == [Outcome.FAILED, Outcome.SKIPPED, Outcome.SKIPPED]

    # WHEN / THEN the notification fails in round 1
    assert isinstance(verdict(notification, 1, attempts, POLICY), FailedVerdict)


def test_verdict_counts_permanent_failures_from_earlier_rounds() -> None:
    # GIVEN email failed permanently in round 1, and SMS now fails permanently in round 2
    earlier = email_failed_in_round_one(FailureKind.PERMANENT, "bounced")
    notification = make_notification(channels=(Channel.EMAIL, Channel.SMS), attempts=(earlier,))
    attempts = round_of(notification, providers_with(sms=[permanent()]), round_no=2)

    # WHEN / THEN nothing can deliver any more
    assert isinstance(verdict(notification, 2, attempts, POLICY), FailedVerdict)


def test_verdict_retries_when_one_channel_is_only_transiently_failing() -> None:
    notification = make_notification()
    providers = providers_with(email=[permanent()], sms=[permanent()], telegram=[transient()])
    attempts = round_of(notification, providers)

    assert verdict(notification, 1, attempts, POLICY) == RetryVerdict(2)
