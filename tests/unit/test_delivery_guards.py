"""What keeps a delivery from going out twice or silently wrong: the delivery ledger, provider health
and readiness, duplicate queue messages, undecodable API bodies and the delivery queue's message."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from notification_service.delivery_message import DeliveryRecord, encode
from notification_service.domain.delivery import (
    Commit,
    Delivered,
    DeliveryFailed,
    OutgoingMessage,
    ProviderAnswer,
    no_commit,
)
from notification_service.domain.model import (
    Attempt,
    Channel,
    FailureKind,
    Notification,
    Outcome,
    SendInProgress,
    Status,
)
from notification_service.domain.recipient import Recipient
from notification_service.domain.retry_policy import RetryPolicy
from notification_service.errors import DependencyUnavailable
from notification_service.ports import DeliveryMessage, HealthCheck
from notification_service.service.dispatch import DispatchOutcome, DispatchService, RoundReleased
from notification_service.service.readiness import check_dependencies
from pydantic import ValidationError

from infra.lambda_runtime import LocalLambdaContext
from tests.conftest import load_event
from tests.fakes import (
    ApiFakes,
    FakeClock,
    FakeLedger,
    FakeProvider,
    FakeQueue,
    FakeRepository,
    ok,
    transient,
)
from tests.unit.test_api_handler import call, post

LEASE = timedelta(seconds=120)
NOTIFICATION_ID = "n-1"
CORRELATION_ID = "corr-1"


# --- fakes of the cache-backed ports -----------------------------------------------------------------


class FakeProviderHealth:
    """ProviderHealth that remembers every report; problems() answers the latest problem per channel."""

    def __init__(self) -> None:
        self.reports: list[tuple[Channel, str | None]] = []
        self.current: dict[Channel, str] = {}
        self.unavailable = False
        self.problem_queries = 0

    def report(self, channel: Channel, problem: str | None) -> None:
        if self.unavailable:
            raise DependencyUnavailable("redis", "fake outage")
        self.reports.append((channel, problem))
        if problem is None:
            self.current.pop(channel, None)
        else:
            self.current[channel] = problem

    def problems(self) -> dict[Channel, str]:
        self.problem_queries += 1
        if self.unavailable:
            raise DependencyUnavailable("redis", "fake outage")
        return dict(self.current)


class Check:
    """A HealthCheck that answers, or raises as its dependency would when down."""

    def __init__(self, dependency: str, down: bool = False) -> None:
        self.dependency = dependency
        self.down = down

    def check(self) -> None:
        if self.down:
            raise DependencyUnavailable(self.dependency, "connection refused")


# --- a dispatch world --------------------------------------------------------------------------------


@dataclass
class World:
    clock: FakeClock = field(default_factory=FakeClock)
    repo: FakeRepository = field(default_factory=FakeRepository)
    queue: FakeQueue = field(default_factory=FakeQueue)
    ledger: FakeLedger = field(default_factory=FakeLedger)
    health: FakeProviderHealth = field(default_factory=FakeProviderHealth)
    providers: dict[Channel, FakeProvider] = field(
        default_factory=lambda: {channel: FakeProvider(channel) for channel in Channel}
    )

    def add(
        self, notification_id: str = NOTIFICATION_ID, channels: tuple[Channel, ...] = tuple(Channel)
    ) -> None:
        self.repo.add(
            Notification(
                id=notification_id,
                recipient=Recipient(
                    email="user@example.com", phone="+447911123456", telegram_chat_id="123456789"
                ),
                message="Hello from notification service!",
                channels=channels,
                correlation_id=CORRELATION_ID,
                created_at=self.clock(),
                updated_at=self.clock(),
            )
        )

    def service(self, send_budget_seconds: float = 0, resend_uncertain: bool = False) -> DispatchService:
        return DispatchService(
            repository=self.repo,
            queue=self.queue,
            providers=dict(self.providers),
            policy=RetryPolicy(3, 2),
            now=self.clock,
            worker_id="w1",
            lease=LEASE,
            provider_health=self.health,
            ledger=self.ledger,
            send_budget_seconds=send_budget_seconds,
            resend_uncertain=resend_uncertain,
        )

    def dispatch(
        self, round_no: int, receive_count: int = 1, notification_id: str = NOTIFICATION_ID
    ) -> DispatchOutcome:
        message = DeliveryMessage(notification_id, round_no, CORRELATION_ID, receive_count)
        return asyncio.run(self.service().dispatch(message))

    def record(self, notification_id: str = NOTIFICATION_ID) -> Notification:
        return self.repo.get(notification_id)

    def calls(self) -> dict[Channel, int]:
        return {channel: len(provider.sent) for channel, provider in self.providers.items()}


@pytest.fixture
def world() -> World:
    w = World()
    w.add()
    return w


# --- write-ahead, the delivery ledger, and rounds that run again ------------------------------------


def died_during(world: World, channel: Channel, earlier: tuple[Attempt, ...] = ()) -> None:
    """Round 1 was claimed by a worker that wrote its intent to send `channel` and then died; the
    lease has run out since."""
    claimed = world.repo.claim_round(NOTIFICATION_ID, 1, "dead", world.clock(), world.clock() + LEASE)
    world.repo.begin_send(NOTIFICATION_ID, 1, "dead", channel, earlier, world.clock())
    assert claimed.lease_until is not None
    world.clock.advance(LEASE.total_seconds())


def test_the_intent_is_written_before_the_provider_is_called_and_the_answer_after(world: World) -> None:
    seen: list[object] = []

    class Peeking(FakeProvider):
        async def send(self, message: OutgoingMessage, commit: Commit = no_commit) -> ProviderAnswer:
            await commit()
            seen.append(world.record().sending)
            return await super().send(message)

    world.providers[Channel.EMAIL] = Peeking(Channel.EMAIL)

    assert world.dispatch(1) is DispatchOutcome.SENT

    # the claim wrote the first send's intent (no channel: whichever the round sends first), under a
    # token the ledger holds; right before the provider call, the ledger marked email started
    [intent] = seen
    assert isinstance(intent, SendInProgress)
    assert (intent.round, intent.channel, intent.started_at) == (1, None, world.clock())
    assert world.ledger.rounds[(NOTIFICATION_ID, 1)] == {f"claim:{intent.token}", "started:email"}
    assert world.ledger.calls == ["mark_claim", "mark_started", "record"]
    assert world.repo.sends_begun == []  # no write of its own: 2 writes for the round, not 3
    assert world.ledger.entries == {(NOTIFICATION_ID, 1, Channel.EMAIL): Delivered("fake-email-1")}
    assert world.record().sending is None  # the result write clears it


def test_failed_attempts_are_written_with_the_next_channels_intent(world: World) -> None:
    world.providers[Channel.EMAIL].script = [transient("SMTP 451")]

    world.dispatch(1)

    # email's intent came with the claim; sms's is written with email's failed attempt
    assert world.repo.sends_begun == [(NOTIFICATION_ID, 1, Channel.SMS)]
    assert [(a.channel, a.outcome) for a in world.record().attempts] == [
        (Channel.EMAIL, Outcome.FAILED),
        (Channel.SMS, Outcome.SENT),
    ]


def test_a_send_known_delivered_from_the_ledger_is_not_sent_again(world: World) -> None:
    # GIVEN a worker died after email delivered and its answer reached the ledger, not the record
    died_during(world, Channel.EMAIL)
    world.ledger.entries[(NOTIFICATION_ID, 1, Channel.EMAIL)] = Delivered("smtp-id-from-before")

    # WHEN the round runs again
    outcome = world.dispatch(1)

    # THEN no provider is asked and the round ends sent with the earlier provider id
    record = world.record()
    assert outcome is DispatchOutcome.SENT
    assert world.calls() == {Channel.EMAIL: 0, Channel.SMS: 0, Channel.TELEGRAM: 0}
    assert (record.status, record.channel_used, record.provider_message_id) == (
        Status.SENT,
        Channel.EMAIL,
        "smtp-id-from-before",
    )
    assert [(a.channel, a.outcome) for a in record.attempts] == [(Channel.EMAIL, Outcome.SENT)]


def test_a_send_known_failed_from_the_ledger_moves_on_to_the_next_channel(world: World) -> None:
    died_during(world, Channel.EMAIL)
    world.ledger.entries[(NOTIFICATION_ID, 1, Channel.EMAIL)] = transient("SMTP 451")

    assert world.dispatch(1) is DispatchOutcome.SENT

    assert world.calls() == {Channel.EMAIL: 0, Channel.SMS: 1, Channel.TELEGRAM: 0}
    assert [(a.channel, a.outcome, a.error) for a in world.record().attempts] == [
        (Channel.EMAIL, Outcome.FAILED, "SMTP 451"),
        (Channel.SMS, Outcome.SENT, None),
    ]


def test_a_send_with_no_recorded_outcome_is_uncertain_and_never_sent_again(world: World) -> None:
    # GIVEN a worker died during the email send, before any answer was recorded
    died_during(world, Channel.EMAIL)

    # WHEN the round runs again
    outcome = world.dispatch(1)

    # THEN nothing is sent; the round ends sent on email, the attempt marked uncertain
    record = world.record()
    assert outcome is DispatchOutcome.SENT
    assert world.calls() == {Channel.EMAIL: 0, Channel.SMS: 0, Channel.TELEGRAM: 0}
    assert (record.status, record.channel_used, record.provider_message_id) == (
        Status.SENT,
        Channel.EMAIL,
        None,
    )
    (attempt,) = record.attempts
    assert attempt.outcome is Outcome.UNCERTAIN
    assert attempt.error is not None and "not sent again" in attempt.error


def test_with_uncertain_sends_resent_the_in_flight_channel_is_sent_again(world: World) -> None:
    died_during(world, Channel.EMAIL)

    outcome = asyncio.run(
        world.service(resend_uncertain=True).dispatch(DeliveryMessage(NOTIFICATION_ID, 1, CORRELATION_ID))
    )

    assert outcome is DispatchOutcome.SENT
    assert world.calls() == {Channel.EMAIL: 1, Channel.SMS: 0, Channel.TELEGRAM: 0}
    assert [(a.channel, a.outcome) for a in world.record().attempts] == [(Channel.EMAIL, Outcome.SENT)]


def test_a_round_that_runs_again_skips_channels_already_recorded_for_it(world: World) -> None:
    # GIVEN email failed, then the worker died while sending sms (the email attempt was written with
    # the sms intent), and the ledger lost the sms answer
    at = world.clock()
    email_failed = Attempt(1, Channel.EMAIL, Outcome.FAILED, at, at, "SMTP 451", FailureKind.TRANSIENT)
    died_during(world, Channel.SMS, (email_failed,))
    world.ledger.entries[(NOTIFICATION_ID, 1, Channel.SMS)] = transient("twilio 500")

    assert world.dispatch(1) is DispatchOutcome.SENT

    # THEN email is not tried again in this round, sms is known failed, telegram delivers
    assert world.calls() == {Channel.EMAIL: 0, Channel.SMS: 0, Channel.TELEGRAM: 1}
    assert [(a.channel, a.outcome) for a in world.record().attempts] == [
        (Channel.EMAIL, Outcome.FAILED),
        (Channel.SMS, Outcome.FAILED),
        (Channel.TELEGRAM, Outcome.SENT),
    ]


def test_unavailable_ledger_does_not_stop_delivery(world: World) -> None:
    world.ledger.unavailable = True

    assert world.dispatch(1) is DispatchOutcome.SENT

    # no claim token: the intent is written before the send, as for every send
    assert world.ledger.calls == ["mark_claim", "record"]
    assert world.repo.sends_begun == [(NOTIFICATION_ID, 1, Channel.EMAIL)]
    assert world.calls()[Channel.EMAIL] == 1
    assert world.record().status is Status.SENT


def test_a_worker_whose_lease_was_taken_over_never_sends(world: World) -> None:
    # GIVEN email fails, and another worker takes the round over before this one's sms send
    world.providers[Channel.EMAIL].script = [transient("SMTP 451")]
    service = world.service()
    original = world.repo.begin_send

    def lose_it_then_write(*args: Any) -> None:
        world.repo.items[NOTIFICATION_ID] = world.record().with_changes(lease_owner="someone-else")
        original(*args)

    world.repo.begin_send = lose_it_then_write  # type: ignore[method-assign,assignment]

    outcome = asyncio.run(service.dispatch(DeliveryMessage(NOTIFICATION_ID, 1, CORRELATION_ID)))

    # THEN the sms intent's write is refused and sms is never sent
    assert outcome is DispatchOutcome.DROPPED
    assert world.calls() == {Channel.EMAIL: 1, Channel.SMS: 0, Channel.TELEGRAM: 0}


def test_a_worker_that_stalled_past_its_lease_never_makes_its_first_send(world: World) -> None:
    # GIVEN the first send's intent came with the claim, and the worker stalls until its lease is
    # nearly gone (only then could another worker take the round over)
    service = world.service(send_budget_seconds=12)
    original = world.repo.claim_round

    def claim_then_stall(*args: Any) -> Notification:
        claimed = original(*args)
        world.clock.advance(LEASE.total_seconds() - 5)
        return claimed

    world.repo.claim_round = claim_then_stall  # type: ignore[method-assign,assignment]

    # THEN the send is not started (less than one send's time left in the lease): released, unsent
    with pytest.raises(RoundReleased):
        asyncio.run(service.dispatch(DeliveryMessage(NOTIFICATION_ID, 1, CORRELATION_ID)))
    assert world.calls() == {Channel.EMAIL: 0, Channel.SMS: 0, Channel.TELEGRAM: 0}
    assert world.record().sending is None


def test_without_time_for_another_send_the_round_is_released_unfinished(world: World) -> None:
    # GIVEN email fails, and then the invocation has less time left than one send may take
    world.providers[Channel.EMAIL].script = [transient("SMTP 451")]
    left = iter([60.0, 3.0])
    service = world.service(send_budget_seconds=12)

    # WHEN round 1 runs
    with pytest.raises(RoundReleased):
        asyncio.run(service.dispatch(DeliveryMessage(NOTIFICATION_ID, 1, CORRELATION_ID), lambda: next(left)))

    # THEN sms was not started; the email attempt is kept and the lease ends now, so the next message
    # (or the sweeper) claims the round at once and goes on with sms
    record = world.record()
    assert world.calls() == {Channel.EMAIL: 1, Channel.SMS: 0, Channel.TELEGRAM: 0}
    assert [(a.channel, a.outcome) for a in record.attempts] == [(Channel.EMAIL, Outcome.FAILED)]
    assert (record.status, record.lease_until, record.sending) == (Status.PROCESSING, world.clock(), None)
    assert world.dispatch(1) is DispatchOutcome.SENT
    assert world.calls() == {Channel.EMAIL: 1, Channel.SMS: 1, Channel.TELEGRAM: 0}


def test_a_lease_about_to_end_also_stops_a_send(world: World) -> None:
    service = world.service(send_budget_seconds=LEASE.total_seconds() + 1)

    with pytest.raises(RoundReleased):
        asyncio.run(service.dispatch(DeliveryMessage(NOTIFICATION_ID, 1, CORRELATION_ID)))
    assert world.calls()[Channel.EMAIL] == 0


# --- provider health ---------------------------------------------------------------------------------


def test_configuration_error_is_reported_and_a_later_success_clears_it(world: World) -> None:
    # GIVEN email's credentials are wrong in round 1 (and no other channel can deliver), fine later
    world.add("n-2", channels=(Channel.EMAIL,))
    world.providers[Channel.EMAIL].script = [DeliveryFailed.misconfigured("bad creds"), ok()]

    # WHEN round 1 runs: email fails with a configuration error
    first = world.dispatch(1, notification_id="n-2")

    # THEN the problem is reported for email, and the round will be retried
    assert first is DispatchOutcome.RETRYING
    assert world.health.reports == [(Channel.EMAIL, "bad creds")]
    assert world.health.problems() == {Channel.EMAIL: "bad creds"}

    # WHEN round 2 runs and email delivers
    world.clock.advance(2)
    second = world.dispatch(2, notification_id="n-2")

    # THEN email reports working again, and the problem is gone
    assert second is DispatchOutcome.SENT
    assert world.health.reports == [(Channel.EMAIL, "bad creds"), (Channel.EMAIL, None)]
    assert world.health.problems() == {}


def test_configuration_error_on_one_channel_and_success_on_the_next(world: World) -> None:
    world.providers[Channel.EMAIL].script = [DeliveryFailed.misconfigured("bad creds")]

    outcome = world.dispatch(1)

    assert outcome is DispatchOutcome.SENT
    assert world.record().channel_used is Channel.SMS
    assert world.health.reports == [(Channel.EMAIL, "bad creds"), (Channel.SMS, None)]
    assert world.health.problems() == {Channel.EMAIL: "bad creds"}


def test_unavailable_provider_health_does_not_fail_the_round(world: World) -> None:
    # GIVEN the cache behind provider health is down and email is misconfigured
    world.health.unavailable = True
    world.providers[Channel.EMAIL].script = [DeliveryFailed.misconfigured("bad creds")]

    # WHEN round 1 runs
    outcome = world.dispatch(1)

    # THEN the round goes on to SMS and is written as sent
    assert outcome is DispatchOutcome.SENT
    assert world.record().status is Status.SENT
    assert world.record().channel_used is Channel.SMS
    assert world.health.reports == []


def test_transient_failure_does_not_clear_a_configuration_problem(world: World) -> None:
    # GIVEN email's credentials were reported wrong
    world.add("n-2", channels=(Channel.EMAIL,))
    world.providers[Channel.EMAIL].script = [DeliveryFailed.misconfigured("bad creds"), transient("timeout")]
    world.dispatch(1, notification_id="n-2")

    # WHEN the next email send times out
    world.clock.advance(2)
    world.dispatch(2, notification_id="n-2")

    # THEN nothing showed the credentials work: the problem is still reported
    assert world.health.problems() == {Channel.EMAIL: "bad creds"}


# --- readiness ---------------------------------------------------------------------------------------


def test_readiness_adds_a_reported_configuration_problem() -> None:
    # GIVEN every dependency answers and email reported bad credentials
    health = FakeProviderHealth()
    health.report(Channel.EMAIL, "SMTP authentication failed (535)")
    checks: dict[str, HealthCheck] = {"dynamodb": Check("dynamodb"), "redis": Check("redis")}

    # WHEN readiness is checked
    results = check_dependencies(checks, health)

    # THEN the problem is named under its channel
    assert results == {
        "dynamodb": "ok",
        "redis": "ok",
        "email": "configuration error: SMTP authentication failed (535)",
    }


def test_readiness_does_not_ask_provider_health_when_redis_is_down() -> None:
    health = FakeProviderHealth()
    health.report(Channel.EMAIL, "bad creds")
    checks: dict[str, HealthCheck] = {"dynamodb": Check("dynamodb"), "redis": Check("redis", down=True)}

    results = check_dependencies(checks, health)

    assert results == {"dynamodb": "ok", "redis": "unavailable: connection refused"}
    assert health.problem_queries == 0


def test_readiness_reports_redis_when_provider_health_cannot_be_read() -> None:
    health = FakeProviderHealth()
    health.unavailable = True
    checks: dict[str, HealthCheck] = {"redis": Check("redis")}

    results = check_dependencies(checks, health)

    assert results == {"redis": "unavailable: fake outage"}
    assert health.problem_queries == 1


def test_readiness_without_provider_health_is_the_checks_alone() -> None:
    assert check_dependencies({"sqs": Check("sqs")}) == {"sqs": "ok"}


# --- duplicate queue messages ------------------------------------------------------------------------


def test_first_delivery_duplicate_after_a_retrying_round_is_dropped(world: World) -> None:
    # GIVEN round 1 failed on every channel, ended retrying, and queued round 2
    for provider in world.providers.values():
        provider.script = [transient()]
    assert world.dispatch(1) is DispatchOutcome.RETRYING
    queued = list(world.queue.sent)
    assert [(m.round, delay) for m, delay in queued] == [(2, 2)]

    # WHEN a plain SQS duplicate of the round-1 message arrives (first receive)
    outcome = world.dispatch(1, receive_count=1)

    # THEN it is dropped: nothing more is sent or queued
    assert outcome is DispatchOutcome.DROPPED
    assert world.queue.sent == queued
    assert world.calls() == {Channel.EMAIL: 1, Channel.SMS: 1, Channel.TELEGRAM: 1}


def test_redelivered_round_message_after_a_retrying_round_requeues_the_next_round(world: World) -> None:
    # GIVEN round 1 ended retrying, due in 2 s
    for provider in world.providers.values():
        provider.script = [transient()]
    assert world.dispatch(1) is DispatchOutcome.RETRYING
    world.queue.sent.clear()

    # WHEN the round-1 message comes back after a failed receive
    outcome = world.dispatch(1, receive_count=2)

    # THEN round 2 is queued again with the time still to wait, and nothing is sent
    assert outcome is DispatchOutcome.REQUEUED_NEXT_ROUND
    assert world.queue.sent == [(DeliveryMessage(NOTIFICATION_ID, 2, CORRELATION_ID), 2)]
    assert world.calls() == {Channel.EMAIL: 1, Channel.SMS: 1, Channel.TELEGRAM: 1}


# --- API handler: bodies that cannot be decoded ------------------------------------------------------


def base64_post(body: str) -> dict[str, Any]:
    event = post(None, raw=body)
    event["isBase64Encoded"] = True
    return event


def assert_nothing_stored(api_fakes: ApiFakes) -> None:
    assert api_fakes.repository.items == {}
    assert api_fakes.queue.sent == []


def test_body_that_is_not_base64_is_400(api_fakes: ApiFakes, lambda_context: LocalLambdaContext) -> None:
    status, _, answer = call(base64_post("!!!not base64"), lambda_context)

    assert status == 400
    assert answer["error"] == "bad_request"
    assert answer["details"] == [{"field": "body", "reason": "not valid base64"}]
    assert_nothing_stored(api_fakes)


def test_base64_body_that_is_not_utf8_is_400(api_fakes: ApiFakes, lambda_context: LocalLambdaContext) -> None:
    status, _, answer = call(base64_post(base64.b64encode(b"\xff\xfe").decode()), lambda_context)

    assert status == 400
    assert answer["error"] == "bad_request"
    assert answer["details"] == [{"field": "body", "reason": "not valid UTF-8"}]
    assert_nothing_stored(api_fakes)


def test_valid_base64_json_body_is_accepted(api_fakes: ApiFakes, lambda_context: LocalLambdaContext) -> None:
    body = json.dumps({"recipient": "u@example.com", "message": "hi ✓"}).encode()

    status, _, answer = call(base64_post(base64.b64encode(body).decode()), lambda_context)

    assert status == 202
    assert api_fakes.repository.items[answer["id"]].message == "hi ✓"


def test_nan_in_metadata_is_422_naming_metadata(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    raw = '{"recipient":"u@example.com","message":"hi","metadata":{"x":NaN}}'

    status, _, answer = call(post(None, raw=raw), lambda_context)

    assert status == 422
    assert answer["error"] == "validation_error"
    assert "metadata" in [d["field"] for d in answer["details"]], answer
    assert_nothing_stored(api_fakes)


def test_sample_invalid_post_names_every_bad_field(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    # GIVEN the sample invalid request: empty recipient, channels ["email", "email", "pigeon"]
    event = load_event("api_post_invalid.json")

    # WHEN it is posted
    status, _, answer = call(event, lambda_context)

    # THEN 422 names the recipient and the unknown channel by its position
    fields = [d["field"] for d in answer["details"]]
    assert status == 422
    assert answer["error"] == "validation_error"
    assert "recipient" in fields
    assert "channels.2" in fields
    assert_nothing_stored(api_fakes)


# --- the delivery queue's message --------------------------------------------------------------------


def sample_record() -> dict[str, Any]:
    record: dict[str, Any] = load_event("sqs_dispatch.json")["Records"][0]
    return record


def test_sample_sqs_record_parses_into_a_delivery_message() -> None:
    message = DeliveryRecord.model_validate(sample_record()).message()

    assert message == DeliveryMessage(
        notification_id="00000000-0000-4000-8000-000000000000",
        round=1,
        correlation_id="sample-correlation-id-0001",
        receive_count=1,
    )


def test_record_body_without_round_is_rejected() -> None:
    record = sample_record()
    record["body"] = json.dumps({"notification_id": "n-1", "correlation_id": "c"})

    with pytest.raises(ValidationError) as caught:
        DeliveryRecord.model_validate(record)

    assert ("body", "round") in [e["loc"] for e in caught.value.errors()]


def test_record_without_correlation_id_falls_back_to_the_message_id() -> None:
    record = sample_record()
    record["body"] = json.dumps({"notification_id": "n-1", "round": 2})
    record["attributes"]["ApproximateReceiveCount"] = "3"

    message = DeliveryRecord.model_validate(record).message()

    assert message == DeliveryMessage("n-1", 2, "059f36b4-87a3-44ab-83d2-661975830a7d", receive_count=3)


def test_encoded_message_round_trips_through_a_record() -> None:
    # GIVEN a delivery message as the service would enqueue it
    original = DeliveryMessage("n-42", 3, "corr-42")

    # WHEN it is encoded as the queue body and read back as an SQS record
    record = sample_record()
    record["body"] = encode(original)
    decoded = DeliveryRecord.model_validate(record).message()

    # THEN it is the same message (a first receive)
    assert decoded == original
    assert json.loads(encode(original)) == {
        "notification_id": "n-42",
        "round": 3,
        "correlation_id": "corr-42",
    }


def test_a_provider_that_delivers_without_committing_is_reported(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    class Careless(FakeProvider):
        async def send(self, message: OutgoingMessage, commit: Commit = no_commit) -> ProviderAnswer:
            return Delivered("sent-without-intent")

    world.providers[Channel.EMAIL] = Careless(Channel.EMAIL)

    assert world.dispatch(1) is DispatchOutcome.SENT
    assert "provider delivered without writing the send's intent first" in caplog.text


def test_a_store_outage_when_writing_the_intent_stops_the_round_without_a_send(world: World) -> None:
    # GIVEN the store fails right when an intent is written (the ledger is down: no claim token)
    world.ledger.unavailable = True
    original = world.repo.begin_send

    def store_down(*args: Any) -> None:
        raise DependencyUnavailable("dynamodb", "fake outage")

    world.repo.begin_send = store_down  # type: ignore[method-assign,assignment]

    # WHEN round 1 runs THEN the outage propagates (the message comes back) and nothing was sent
    with pytest.raises(DependencyUnavailable):
        world.dispatch(1)
    world.repo.begin_send = original  # type: ignore[method-assign]
    assert world.calls() == {Channel.EMAIL: 0, Channel.SMS: 0, Channel.TELEGRAM: 0}
    assert world.record().status is Status.PROCESSING  # the lease runs out; then it is claimed again


# --- the first send's intent, written by the claim ----------------------------------------------------
def claimed_and_died(world: World, started: bool) -> str:
    """Round 1 was claimed with the first send's intent by a worker that died before (or right after)
    marking the send started; the lease has run out since. Its token."""
    world.ledger.mark_claim(NOTIFICATION_ID, 1, "t-dead")
    world.repo.claim_round(NOTIFICATION_ID, 1, "dead", world.clock(), world.clock() + LEASE, "t-dead")
    if started:
        world.ledger.mark_started(NOTIFICATION_ID, 1, Channel.EMAIL)
    world.clock.advance(LEASE.total_seconds())
    world.ledger.calls.clear()
    return "t-dead"


def test_a_first_send_that_never_started_is_sent_when_the_round_runs_again(world: World) -> None:
    claimed_and_died(world, started=False)

    assert world.dispatch(1) is DispatchOutcome.SENT

    assert world.calls()[Channel.EMAIL] == 1
    assert [(a.channel, a.outcome) for a in world.record().attempts] == [(Channel.EMAIL, Outcome.SENT)]
    # the earlier claim's intent stayed (if_not_exists): this send wrote its own before it started
    assert world.repo.sends_begun == [(NOTIFICATION_ID, 1, Channel.EMAIL)]


def test_a_first_send_that_started_is_uncertain_when_the_round_runs_again(world: World) -> None:
    claimed_and_died(world, started=True)

    world.dispatch(1)

    assert world.calls() == {Channel.EMAIL: 0, Channel.SMS: 0, Channel.TELEGRAM: 0}
    assert [(a.channel, a.outcome) for a in world.record().attempts] == [(Channel.EMAIL, Outcome.UNCERTAIN)]


def test_a_ledger_that_lost_the_claim_cannot_say_and_the_send_counts_as_in_flight(world: World) -> None:
    claimed_and_died(world, started=False)
    world.ledger.forget()  # a flushed or restarted cache

    world.dispatch(1)

    assert world.calls()[Channel.EMAIL] == 0  # at most once: not sent again
    assert world.record().attempts[0].outcome is Outcome.UNCERTAIN
