"""Delivery webhooks on in-memory fakes: the worker's attempts and retries, what the record owes, and
the sweeper sending an owed webhook again when its message was lost."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import timedelta

import pytest
from notification_service.domain.model import Channel, Notification, Status
from notification_service.domain.receipts import ReceiptStatus
from notification_service.domain.recipient import Recipient
from notification_service.domain.retry_policy import RetryPolicy
from notification_service.domain.sweep import SweepPolicy
from notification_service.domain.webhook import event_id, verify
from notification_service.ports import DeliveryMessage, RoundResult, WebhookMessage
from notification_service.service.dispatch import DispatchOutcome, DispatchService
from notification_service.service.notifications import NotificationService, ReceiptOutcome
from notification_service.service.sweeper import Sweeper
from notification_service.service.webhooks import WebhookOutcome, WebhookService, backoff_seconds

from infra.client_commands import timeline
from infra.lambda_runtime import LocalLambdaContext
from tests.conftest import load_event
from tests.fakes import (
    ApiFakes,
    FakeClock,
    FakeIdempotency,
    FakeProvider,
    FakeQueue,
    FakeRepository,
    FakeWebhookQueue,
    email_notification,
)
from tests.handlers import load_function_module

GRACE = timedelta(seconds=60)
URL = "https://hooks.example.com/notify"


@dataclass(frozen=True)
class Answer:
    delivered: bool
    status_code: int | None
    error: str | None
    retryable: bool
    duration_ms: float = 12.0


class FakePoster:
    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.posts: list[tuple[str, bytes, dict[str, str]]] = []

    def send(self, url: str, body: bytes, headers: object) -> Answer:
        self.posts.append((url, body, dict(headers)))  # type: ignore[call-overload]
        return self.answers.pop(0)


OK = Answer(True, 204, None, False)
DOWN = Answer(False, 503, "HTTP 503", True)
GONE = Answer(False, 410, "HTTP 410", False)


def sent_record(clock: FakeClock, repo: FakeRepository, callback_url: str | None = URL) -> Notification:
    n = email_notification(clock(), correlation_id="corr-1", owner="shop", callback_url=callback_url)
    repo.add(n)
    repo.claim_round(n.id, 1, "w", clock(), clock() + GRACE)
    due = clock() + GRACE if callback_url else None
    repo.complete_round(n.id, 1, "w", RoundResult(Status.SENT, [], Channel.EMAIL, webhook_due=due), clock())
    return repo.get(n.id)


def service(
    repo: FakeRepository, queue: FakeWebhookQueue, poster: FakePoster, clock: FakeClock, secret: str | None
) -> WebhookService:
    return WebhookService(
        repo, queue, poster, lambda owner: secret, clock, max_attempts=3, grace=GRACE, backoff_base_seconds=10
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def repo() -> FakeRepository:
    return FakeRepository(sweep_grace=GRACE)


def test_a_delivered_event_is_signed_recorded_and_settles_what_the_record_owes(
    clock: FakeClock, repo: FakeRepository
) -> None:
    n = sent_record(clock, repo)
    assert repo.webhooks_due[n.id][0] == "sent"
    poster, queue = FakePoster(OK), FakeWebhookQueue()
    outcome = service(repo, queue, poster, clock, "s3cret").deliver(WebhookMessage(n.id, "sent", 1, "corr-1"))
    assert outcome is WebhookOutcome.DELIVERED
    [(url, body, headers)] = poster.posts
    assert url == URL
    assert verify("s3cret", body, headers["X-Signature"], now=int(clock().timestamp()))
    event = json.loads(body)
    assert event["id"] == event_id(n.id, "sent") == headers["X-Event-Id"]
    assert event["data"]["channel_used"] == "email"
    [attempt] = repo.get(n.id).webhooks
    assert (attempt.attempt, attempt.delivered, attempt.final, attempt.status_code) == (1, True, True, 204)
    assert n.id not in repo.webhooks_due and queue.sent == []
    # a duplicate message finds the event settled: nothing is sent again
    again = service(repo, queue, FakePoster(), clock, "s3cret").deliver(WebhookMessage(n.id, "sent", 1, "c"))
    assert again is WebhookOutcome.DROPPED


def test_a_failing_receiver_is_retried_with_backoff_then_given_up(
    clock: FakeClock, repo: FakeRepository
) -> None:
    n = sent_record(clock, repo)
    poster, queue = FakePoster(DOWN, DOWN, DOWN), FakeWebhookQueue()
    worker = service(repo, queue, poster, clock, "s3cret")
    assert worker.deliver(WebhookMessage(n.id, "sent", 1, "c")) is WebhookOutcome.RETRYING
    assert [(m.attempt, delay) for m, delay in queue.sent] == [(2, 10)]
    assert repo.webhooks_due[n.id] == ("sent", clock() + timedelta(seconds=10) + GRACE)
    assert worker.deliver(WebhookMessage(n.id, "sent", 2, "c")) is WebhookOutcome.RETRYING
    assert queue.sent[-1][1] == 30
    assert worker.deliver(WebhookMessage(n.id, "sent", 3, "c")) is WebhookOutcome.GAVE_UP
    assert [w.attempt for w in repo.get(n.id).webhooks] == [1, 2, 3]
    assert repo.get(n.id).webhooks[-1].final and n.id not in repo.webhooks_due
    assert repo.get(n.id).status is Status.SENT  # the notification's own status is untouched
    assert {json.loads(body)["id"] for _, body, _ in poster.posts} == {event_id(n.id, "sent")}


def test_a_permanent_refusal_or_no_secret_is_final_at_once(clock: FakeClock, repo: FakeRepository) -> None:
    n = sent_record(clock, repo)
    queue = FakeWebhookQueue()
    assert service(repo, queue, FakePoster(GONE), clock, "s").deliver(
        WebhookMessage(n.id, "sent", 1, "c")
    ) is (WebhookOutcome.GAVE_UP)
    assert queue.sent == []
    repo2 = FakeRepository(sweep_grace=GRACE)
    other = sent_record(clock, repo2)
    poster = FakePoster()
    outcome = service(repo2, queue, poster, clock, None).deliver(WebhookMessage(other.id, "sent", 1, "c"))
    assert outcome is WebhookOutcome.GAVE_UP and poster.posts == []
    assert repo2.get(other.id).webhooks[0].error == "no webhook secret is configured"


def test_nothing_is_sent_without_a_callback_url_or_a_record(clock: FakeClock, repo: FakeRepository) -> None:
    n = sent_record(clock, repo, callback_url=None)
    worker = service(repo, FakeWebhookQueue(), FakePoster(), clock, "s")
    assert worker.deliver(WebhookMessage(n.id, "sent", 1, "c")) is WebhookOutcome.DROPPED
    assert worker.deliver(WebhookMessage("missing", "sent", 1, "c")) is WebhookOutcome.DROPPED


def test_backoff_grows_threefold_up_to_one_sqs_delay() -> None:
    assert [backoff_seconds(n) for n in (1, 2, 3, 4, 5, 6, 7)] == [10, 30, 90, 270, 810, 900, 900]
    assert backoff_seconds(2, base=1) == 3


def test_the_sweeper_sends_an_owed_webhook_again_once_it_is_overdue(
    clock: FakeClock, repo: FakeRepository
) -> None:
    # GIVEN a sent record owing its webhook, whose message was lost
    n = sent_record(clock, repo)
    webhooks = FakeWebhookQueue()
    sweeper = Sweeper(repo, FakeQueue(), SweepPolicy(grace=GRACE), clock, webhooks=webhooks)
    assert sweeper.sweep().webhooks == 0  # not overdue yet
    # WHEN the grace has passed
    clock.advance(61)
    report = sweeper.sweep()
    # THEN its message is sent again, and not again before twice the grace
    assert report.webhooks == 1
    assert [(m.notification_id, m.status) for m, _ in webhooks.sent] == [(n.id, "sent")]
    assert sweeper.sweep().webhooks == 0


def test_the_webhook_handler_runs_a_batch_and_reports_a_bad_record(
    clock: FakeClock, repo: FakeRepository, lambda_context: LocalLambdaContext
) -> None:
    module = load_function_module("webhooks")
    n = sent_record(clock, repo)
    module.webhooks.set(service(repo, FakeWebhookQueue(), FakePoster(OK), clock, "s"))
    body = json.dumps({"notification_id": n.id, "status": "sent", "attempt": 1, "correlation_id": "c"})
    event = {"Records": [_sqs_record("m1", body), _sqs_record("m2", "not json")]}
    try:
        answer = module.lambda_handler(event, lambda_context)
    finally:
        module.webhooks.set(None)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    assert repo.get(n.id).webhooks[0].delivered


def _sqs_record(message_id: str, body: str) -> dict[str, object]:
    return {
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1764072000000",
            "SenderId": "AIDA",
            "ApproximateFirstReceiveTimestamp": "1764072000000",
        },
        "messageAttributes": {},
        "md5OfBody": "x",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:WebhookQueue",
        "awsRegion": "us-east-1",
    }


# -- who owes a webhook -----------------------------------------------------------------------------
def _stored(clock: FakeClock, repo: FakeRepository, nid: str, **changes: object) -> Notification:
    n = email_notification(clock(), nid, callback_url=URL, **changes)
    repo.add(n)
    return n


def test_a_round_that_ends_the_notification_owes_and_enqueues_its_webhook(
    clock: FakeClock, repo: FakeRepository
) -> None:
    n = _stored(clock, repo, "n-d")
    webhooks = FakeWebhookQueue()
    dispatch = DispatchService(
        repo,
        FakeQueue(),
        {Channel.EMAIL: FakeProvider(Channel.EMAIL)},
        RetryPolicy(3, 2),
        clock,
        "w",
        timedelta(seconds=60),
        webhooks=webhooks,
    )
    assert asyncio.run(dispatch.dispatch(DeliveryMessage(n.id, 1, "c"))) is DispatchOutcome.SENT
    assert [(m.notification_id, m.status, m.attempt) for m, _ in webhooks.sent] == [(n.id, "sent", 1)]
    assert repo.webhooks_due[n.id] == ("sent", clock() + timedelta(seconds=60))
    # the enqueue failing does not fail the round: the record still owes it, for the sweeper
    m = _stored(clock, repo, "n-e")
    webhooks.unavailable = True
    assert asyncio.run(dispatch.dispatch(DeliveryMessage(m.id, 1, "c"))) is DispatchOutcome.SENT
    assert repo.webhooks_due[m.id][0] == "sent"


def test_a_cancel_and_a_sweeper_failure_owe_their_webhooks(clock: FakeClock, repo: FakeRepository) -> None:
    webhooks = FakeWebhookQueue()
    notifications = NotificationService(repo, FakeQueue(), FakeIdempotency(), clock, webhooks=webhooks)
    n = _stored(clock, repo, "n-c")
    assert notifications.cancel(n.id, n.owner).status is Status.CANCELLED
    assert [(m.notification_id, m.status) for m, _ in webhooks.sent] == [(n.id, "cancelled")]
    assert repo.webhooks_due[n.id][0] == "cancelled"

    stuck = _stored(clock, repo, "n-s")
    sweeper = Sweeper(repo, FakeQueue(), SweepPolicy(grace=GRACE, max_sweeps=0), clock, webhooks=webhooks)
    clock.advance(61)
    report = sweeper.sweep()
    assert report.failed == {"pending": 1}
    assert (stuck.id, "failed") in [(m.notification_id, m.status) for m, _ in webhooks.sent]


def test_the_api_refuses_a_callback_url_it_cannot_honour(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    api = load_function_module("api")
    event = load_event("api_post_notification.json")
    event["body"] = json.dumps({"recipient": "a@example.com", "message": "m", "callback_url": URL})
    answer = api.lambda_handler(event, lambda_context)  # the fakes have no webhook queue
    assert answer["statusCode"] == 422
    assert json.loads(answer["body"])["details"] == [
        {"field": "callback_url", "reason": "webhooks are not configured on this deployment"}
    ]


def test_notifyctl_status_shows_the_webhook_attempts() -> None:
    notification = {
        "id": "n-1",
        "status": "sent",
        "correlation_id": "c",
        "created_at": "2026-11-25T12:00:00Z",
        "attempts": [],
        "webhooks": [
            {
                "status": "sent",
                "attempt": 1,
                "delivered": False,
                "final": False,
                "duration_ms": 5.2,
                "status_code": 503,
                "error": "HTTP 503",
            },
            {
                "status": "sent",
                "attempt": 2,
                "delivered": True,
                "final": True,
                "duration_ms": 3.0,
                "status_code": 204,
                "error": None,
            },
        ],
    }
    lines = timeline(notification)
    assert "attempt 1  will retry" in lines[1] and "HTTP 503" in lines[1]
    assert "attempt 2  delivered" in lines[2] and "HTTP 204" in lines[2]


# -- provider receipts ------------------------------------------------------------------------------
def test_a_receipt_moves_a_sent_sms_on_once_and_owes_its_webhook(
    clock: FakeClock, repo: FakeRepository
) -> None:
    webhooks = FakeWebhookQueue()
    notifications = NotificationService(repo, FakeQueue(), FakeIdempotency(), clock, webhooks=webhooks)
    n = _stored(clock, repo, "n-r", channels=(Channel.SMS,), recipient=Recipient(phone="+447911123456"))
    # too early: its round has not written the message id yet
    repo.claim_round(n.id, 1, "w", clock(), clock() + GRACE)
    assert (
        notifications.record_receipt(n.id, "SM1", ReceiptStatus.DELIVERED, None) is ReceiptOutcome.TOO_EARLY
    )
    repo.complete_round(n.id, 1, "w", RoundResult(Status.SENT, [], Channel.SMS, "SM1"), clock())
    # another message's receipt changes nothing
    assert notifications.record_receipt(n.id, "SM0", ReceiptStatus.DELIVERED, None) is (
        ReceiptOutcome.NOT_THIS_MESSAGE
    )
    # the receipt: undelivered, with the carrier's code; the callback_url is owed the event
    outcome = notifications.record_receipt(n.id, "SM1", ReceiptStatus.UNDELIVERED, "30003")
    assert outcome is ReceiptOutcome.RECORDED
    record = repo.get(n.id)
    assert (record.status, record.status_reason) == (
        Status.UNDELIVERED,
        "the carrier reported it undelivered (error 30003)",
    )
    assert [(m.status, m.attempt) for m, _ in webhooks.sent] == [("undelivered", 1)]
    # a later state never moves back
    assert notifications.record_receipt(n.id, "SM1", ReceiptStatus.UNDELIVERED, None) is (
        ReceiptOutcome.ALREADY_FINAL
    )
    assert (
        notifications.record_receipt(n.id, "SM1", ReceiptStatus.DELIVERED, None) is ReceiptOutcome.CONFLICTING
    )
    assert repo.get(n.id).status is Status.UNDELIVERED
