"""The DynamoDB, SQS and Redis adapters against the real emulator over HTTP and a real Redis."""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from notification_service.adapters.aws import dynamodb_client, sqs_client
from notification_service.adapters.dynamodb_repository import DynamoDbNotificationRepository
from notification_service.adapters.dynamodb_templates import DynamoDbTemplateStore
from notification_service.adapters.redis_idempotency import RedisIdempotency, redis_client
from notification_service.adapters.sqs_queue import SqsDeliveryQueue
from notification_service.domain.api_keys import ANONYMOUS
from notification_service.domain.lifecycle import TransitionRefused
from notification_service.domain.model import (
    Attempt,
    Channel,
    Content,
    FailureKind,
    Notification,
    Outcome,
    Routing,
    SendInProgress,
    Status,
    WebhookAttempt,
)
from notification_service.domain.recipient import Recipient
from notification_service.domain.sweep import SweepCandidate
from notification_service.domain.template import TemplateNotFound, TemplatePart
from notification_service.errors import (
    DependencyUnavailable,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidCursor,
    NotificationNotFound,
)
from notification_service.ports import (
    ClaimRejected,
    DeliveryMessage,
    LeaseLost,
    ListQuery,
    NotificationAlreadyExists,
    RoundResult,
)
from notification_service.settings import Settings

from infra.emulator import Emulator, free_port

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def repository(settings: Settings) -> DynamoDbNotificationRepository:
    return DynamoDbNotificationRepository(
        dynamodb_client(settings.aws_endpoint_url), settings.table_name, timedelta(days=30)
    )


@pytest.fixture
def queue(settings: Settings) -> SqsDeliveryQueue:
    return SqsDeliveryQueue(sqs_client(settings.aws_endpoint_url), settings.queue_url)


def notification(**changes: Any) -> Notification:
    n = Notification(
        id=str(uuid.uuid4()),
        recipient=Recipient(email="user@example.com", phone="+447911123456", telegram_chat_id="-100123"),
        message="Hello ✓",
        channels=(Channel.SMS, Channel.EMAIL),
        correlation_id="cid-1",
        created_at=T0,
        updated_at=T0,
        subject="Subject",
        metadata={"order": 1234, "ratio": 0.5, "tags": ["a", "b"], "nested": {"x": True}},
    )
    return n.with_changes(**changes)


def test_a_record_round_trips(repository: DynamoDbNotificationRepository, settings: Settings) -> None:
    stored = notification()
    repository.add(stored)
    assert repository.get(stored.id) == stored
    raw = boto3.client("dynamodb", endpoint_url=settings.aws_endpoint_url).get_item(
        TableName=settings.table_name,
        Key={"pk": {"S": f"NOTIFICATION#{stored.id}"}, "sk": {"S": "NOTIFICATION"}},
    )["Item"]
    assert int(raw["expires_at"]["N"]) == int((T0 + timedelta(days=30)).timestamp())


def test_unknown_id_is_not_found(repository: DynamoDbNotificationRepository) -> None:
    with pytest.raises(NotificationNotFound):
        repository.get("missing")
    with pytest.raises(NotificationNotFound):
        repository.claim_round("missing", 1, "w", T0, T0 + timedelta(minutes=2))


def test_a_round_is_claimed_once_and_completed_under_the_lease(
    repository: DynamoDbNotificationRepository,
) -> None:
    # GIVEN a pending notification
    n = notification()
    repository.add(n)
    # WHEN worker A claims round 1
    claimed = repository.claim_round(n.id, 1, "A", T0, T0 + timedelta(seconds=120))
    assert (claimed.status, claimed.round, claimed.lease_owner) == (Status.PROCESSING, 1, "A")
    assert claimed.lease_until == T0 + timedelta(seconds=120)
    # THEN worker B cannot claim it while the lease lives, and learns the current state
    with pytest.raises(ClaimRejected) as rejected:
        repository.claim_round(n.id, 1, "B", T0 + timedelta(seconds=5), T0 + timedelta(seconds=125))
    assert rejected.value.current.lease_owner == "A"
    # AND B cannot write a result for it
    attempt = Attempt(1, Channel.SMS, Outcome.SENT, T0, T0, provider_message_id="SM1")
    with pytest.raises(LeaseLost):
        repository.complete_round(n.id, 1, "B", RoundResult(Status.SENT, [attempt], Channel.SMS, "SM1"), T0)
    # WHEN A completes the round THEN the record is sent, with the attempt, and the lease is gone
    done = repository.complete_round(
        n.id, 1, "A", RoundResult(Status.SENT, [attempt], Channel.SMS, "SM1"), T0
    )
    assert (done.status, done.channel_used, done.provider_message_id) == (Status.SENT, Channel.SMS, "SM1")
    assert done.attempts == (attempt,)
    assert done.lease_owner is None
    # AND a duplicate message can never claim it again
    with pytest.raises(ClaimRejected):
        repository.claim_round(n.id, 1, "C", T0 + timedelta(hours=1), T0 + timedelta(hours=2))


def test_an_expired_lease_can_be_taken_over(repository: DynamoDbNotificationRepository) -> None:
    n = notification()
    repository.add(n)
    repository.claim_round(n.id, 1, "A", T0, T0 + timedelta(seconds=120))
    later = T0 + timedelta(seconds=121)
    taken = repository.claim_round(n.id, 1, "B", later, later + timedelta(seconds=120))
    assert taken.lease_owner == "B"


def test_retrying_rounds_accumulate_attempts(repository: DynamoDbNotificationRepository) -> None:
    n = notification()
    repository.add(n)
    failed = Attempt(
        1, Channel.SMS, Outcome.FAILED, T0, T0, error="bad number", failure_kind=FailureKind.PERMANENT
    )
    repository.claim_round(n.id, 1, "A", T0, T0 + timedelta(seconds=60))
    due = T0 + timedelta(seconds=2)
    after = repository.complete_round(
        n.id, 1, "A", RoundResult(Status.RETRYING, [failed], next_attempt_at=due), T0
    )
    assert (after.status, after.next_attempt_at) == (Status.RETRYING, due)
    with pytest.raises(ClaimRejected):  # round 3 is not the next one
        repository.claim_round(n.id, 3, "A", T0, T0)
    second = repository.claim_round(n.id, 2, "A", due, due + timedelta(seconds=60))
    assert second.next_attempt_at is None
    assert second.permanently_failed_channels() == {Channel.SMS}


def test_the_send_intent_is_written_under_the_lease_and_cleared_by_the_result(
    repository: DynamoDbNotificationRepository,
) -> None:
    n = notification()
    repository.add(n)
    repository.claim_round(n.id, 1, "A", T0, T0 + timedelta(seconds=120))
    failed = Attempt(1, Channel.SMS, Outcome.FAILED, T0, T0, "twilio 500", FailureKind.TRANSIENT)

    # a worker without the lease may not start a send
    with pytest.raises(LeaseLost):
        repository.begin_send(n.id, 1, "B", Channel.EMAIL, [failed], T0)
    repository.begin_send(n.id, 1, "A", Channel.EMAIL, [failed], T0)

    during = repository.get(n.id)
    assert during.sending == SendInProgress(1, Channel.EMAIL, T0)
    assert during.attempts == (failed,)
    # a takeover after the lease sees what was in flight
    taken = repository.claim_round(n.id, 1, "C", T0 + timedelta(seconds=121), T0 + timedelta(seconds=240))
    assert taken.sending == SendInProgress(1, Channel.EMAIL, T0)
    sent = Attempt(1, Channel.EMAIL, Outcome.UNCERTAIN, T0, T0, "uncertain")
    done = repository.complete_round(n.id, 1, "C", RoundResult(Status.SENT, [sent], Channel.EMAIL), T0)
    assert done.sending is None
    assert done.attempts == (failed, sent)


def test_releasing_a_round_keeps_its_attempts_and_ends_the_lease_now(
    repository: DynamoDbNotificationRepository,
) -> None:
    n = notification()
    repository.add(n)
    repository.claim_round(n.id, 1, "A", T0, T0 + timedelta(seconds=120))
    failed = Attempt(1, Channel.SMS, Outcome.FAILED, T0, T0, "twilio 500", FailureKind.TRANSIENT)
    later = T0 + timedelta(seconds=50)

    repository.release_round(n.id, 1, "A", [failed], later)

    released = repository.get(n.id)
    assert (released.status, released.lease_until, released.attempts) == (Status.PROCESSING, later, (failed,))
    assert [c.id for c in repository.stuck(Status.PROCESSING, later, 10)] == [n.id]
    assert repository.claim_round(n.id, 1, "B", later, later + timedelta(seconds=120)).lease_owner == "B"
    with pytest.raises(LeaseLost):
        repository.release_round(n.id, 1, "A", [], later)


def test_adding_an_existing_id_is_refused(repository: DynamoDbNotificationRepository) -> None:
    n = notification()
    repository.add(n)
    with pytest.raises(NotificationAlreadyExists):
        repository.add(n.with_changes(message="other"))
    assert repository.get(n.id).message == n.message


def test_the_sweep_index_finds_overdue_records_of_each_status(
    repository: DynamoDbNotificationRepository,
) -> None:
    # GIVEN one record pending, one processing under a lease, one retrying, one sent
    pending, processing, retrying, sent = (notification() for _ in range(4))
    for n in (pending, processing, retrying, sent):
        repository.add(n)
    repository.claim_round(processing.id, 1, "A", T0, T0 + timedelta(seconds=120))
    repository.claim_round(retrying.id, 1, "A", T0, T0 + timedelta(seconds=120))
    repository.complete_round(
        retrying.id, 1, "A", RoundResult(Status.RETRYING, [], next_attempt_at=T0 + timedelta(seconds=4)), T0
    )
    repository.claim_round(sent.id, 1, "A", T0, T0 + timedelta(seconds=120))
    repository.complete_round(sent.id, 1, "A", RoundResult(Status.SENT, [], Channel.SMS, "SM1"), T0)

    def ids(status: Status, at: datetime) -> set[str]:
        return {c.id for c in repository.stuck(status, at, 100)}

    # THEN each shows up once its grace (60 s) or lease is over, and the sent one never does
    assert ids(Status.PENDING, T0 + timedelta(seconds=59)) == set()
    assert ids(Status.PENDING, T0 + timedelta(seconds=60)) == {pending.id}
    assert ids(Status.PROCESSING, T0 + timedelta(seconds=119)) == set()
    assert ids(Status.PROCESSING, T0 + timedelta(seconds=120)) == {processing.id}
    assert ids(Status.RETRYING, T0 + timedelta(seconds=64)) == {retrying.id}
    far = T0 + timedelta(days=1)
    assert sent.id not in ids(Status.PENDING, far) | ids(Status.PROCESSING, far) | ids(Status.RETRYING, far)
    (candidate,) = repository.stuck(Status.RETRYING, far, 100)
    assert candidate == SweepCandidate(retrying.id, Status.RETRYING, 1, "cid-1", 0)


def test_marking_a_sweep_is_conditional_and_pushes_the_due_time(
    repository: DynamoDbNotificationRepository,
) -> None:
    n = notification()
    repository.add(n)
    later = T0 + timedelta(seconds=60)
    (candidate,) = repository.stuck(Status.PENDING, later, 10)

    assert repository.mark_swept(candidate, later, later + timedelta(seconds=60)) is True
    assert repository.mark_swept(candidate, later, later + timedelta(seconds=60)) is False  # sweeps moved
    assert repository.stuck(Status.PENDING, later + timedelta(seconds=59), 10) == []
    (again,) = repository.stuck(Status.PENDING, later + timedelta(seconds=60), 10)
    assert again.sweeps == 1
    assert repository.get(n.id).sweeps == 1


def test_closing_is_conditional_and_takes_the_record_out_of_the_sweep_index(
    repository: DynamoDbNotificationRepository,
) -> None:
    n = notification()
    repository.add(n)
    kwargs: dict[str, Any] = {"status": Status.FAILED, "reason": "stuck", "now": T0}

    assert repository.close(n.id, expected=Status.RETRYING, expected_round=0, **kwargs) is False
    assert repository.close(n.id, expected=Status.PENDING, expected_round=0, **kwargs) is True

    closed = repository.get(n.id)
    assert (closed.status, closed.status_reason) == (Status.FAILED, "stuck")
    assert repository.stuck(Status.PENDING, T0 + timedelta(days=1), 10) == []


def test_a_failed_round_keeps_its_reason(repository: DynamoDbNotificationRepository) -> None:
    n = notification()
    repository.add(n)
    repository.claim_round(n.id, 1, "A", T0, T0 + timedelta(seconds=120))
    done = repository.complete_round(
        n.id, 1, "A", RoundResult(Status.FAILED, [], reason="all channels failed in 1 rounds"), T0
    )
    assert done.status_reason == "all channels failed in 1 rounds"


def test_an_unreachable_table_is_a_dependency_error() -> None:
    dead = DynamoDbNotificationRepository(
        dynamodb_client(f"http://127.0.0.1:{free_port()}"), "table", timedelta(days=1)
    )
    with pytest.raises(DependencyUnavailable) as error:
        dead.check()
    assert error.value.dependency == "dynamodb"
    with pytest.raises(DependencyUnavailable):
        dead.claim_round("x", 1, "w", T0, T0)


def test_a_missing_table_is_a_dependency_error(emulator: Emulator) -> None:
    repository = DynamoDbNotificationRepository(
        dynamodb_client(emulator.endpoint_url), "no-table", timedelta(1)
    )
    with pytest.raises(DependencyUnavailable, match="ResourceNotFoundException"):
        repository.get("x")


def test_enqueue_sends_the_round_with_its_correlation_id(queue: SqsDeliveryQueue, settings: Settings) -> None:
    queue.check()
    queue.enqueue(DeliveryMessage("n-1", 2, "cid-9"))
    sqs = boto3.client("sqs", endpoint_url=settings.aws_endpoint_url)
    got = sqs.receive_message(QueueUrl=settings.queue_url, MessageAttributeNames=["All"], WaitTimeSeconds=1)
    (message,) = got["Messages"]
    assert json.loads(message["Body"]) == {"notification_id": "n-1", "round": 2, "correlation_id": "cid-9"}
    assert message["MessageAttributes"]["correlation_id"]["StringValue"] == "cid-9"


def test_a_delayed_round_is_not_visible_at_once(queue: SqsDeliveryQueue, settings: Settings) -> None:
    queue.enqueue(DeliveryMessage("n-1", 2, "cid"), delay_seconds=4)
    sqs = boto3.client("sqs", endpoint_url=settings.aws_endpoint_url)
    attributes = sqs.get_queue_attributes(QueueUrl=settings.queue_url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    assert attributes["ApproximateNumberOfMessages"] == "0"


def test_an_unknown_queue_is_a_dependency_error(emulator: Emulator) -> None:
    missing = SqsDeliveryQueue(
        sqs_client(emulator.endpoint_url), f"{emulator.endpoint_url}/123456789012/none"
    )
    with pytest.raises(DependencyUnavailable) as error:
        missing.enqueue(DeliveryMessage("n", 1, "c"))
    assert error.value.dependency == "sqs"


# -- Redis idempotency --------------------------------------------------------------------------------
@pytest.fixture
def idempotency(redis_url: str) -> RedisIdempotency:
    return RedisIdempotency(redis_client(redis_url), ttl_seconds=600, scope=f"test-{uuid.uuid4().hex}")


def test_the_same_key_and_payload_runs_once_and_replays(idempotency: RedisIdempotency) -> None:
    calls: list[int] = []

    def action() -> dict[str, Any]:
        calls.append(1)
        return {"id": "n-1", "status": "pending"}

    first = idempotency.run("key-1", {"message": "hi"}, action)
    second = idempotency.run("key-1", {"message": "hi"}, action)
    assert first == ({"id": "n-1", "status": "pending"}, False)
    assert second == ({"id": "n-1", "status": "pending"}, True)
    assert len(calls) == 1
    idempotency.check()


def test_the_same_key_with_another_payload_is_refused(idempotency: RedisIdempotency) -> None:
    idempotency.run("key-2", {"message": "hi"}, lambda: {"id": "n-1"})
    with pytest.raises(IdempotencyKeyReused):
        idempotency.run("key-2", {"message": "other"}, lambda: {"id": "n-2"})


def test_the_same_key_while_the_first_is_in_flight_is_refused(idempotency: RedisIdempotency) -> None:
    # GIVEN a first request whose action is blocked until we let it go
    started, release = threading.Event(), threading.Event()
    results: list[tuple[dict[str, Any], bool]] = []

    def slow() -> dict[str, Any]:
        started.set()
        assert release.wait(30)
        return {"id": "n-1"}

    first = threading.Thread(target=lambda: results.append(idempotency.run("key-3", {"m": 1}, slow)))
    first.start()
    assert started.wait(30)
    # WHEN a second request with the same key arrives THEN it is told the first is in flight
    with pytest.raises(IdempotencyKeyInFlight):
        idempotency.run("key-3", {"m": 1}, lambda: {"id": "n-2"})
    release.set()
    first.join(30)
    # AND once the first finished, the key replays its answer
    assert results == [({"id": "n-1"}, False)]
    assert idempotency.run("key-3", {"m": 1}, lambda: {"id": "n-3"}) == ({"id": "n-1"}, True)


def test_a_failed_action_frees_its_key(idempotency: RedisIdempotency) -> None:
    def failing() -> dict[str, Any]:
        raise DependencyUnavailable("sqs", "down")

    with pytest.raises(DependencyUnavailable):
        idempotency.run("key-4", {"m": 1}, failing)
    assert idempotency.run("key-4", {"m": 1}, lambda: {"id": "n-1"}) == ({"id": "n-1"}, False)


def test_redis_down_is_a_dependency_error() -> None:
    dead = RedisIdempotency(redis_client(f"redis://127.0.0.1:{free_port()}/0"), 60, scope="dead")
    with pytest.raises(DependencyUnavailable) as error:
        dead.run("k", {}, lambda: {})
    assert error.value.dependency == "redis"
    with pytest.raises(DependencyUnavailable):
        dead.check()


def test_listing_is_newest_first_by_status_and_channel_with_an_opaque_cursor(
    repository: DynamoDbNotificationRepository,
) -> None:
    # GIVEN 7 records of alice, one per second (the odd ones failed on sms, the even ones sent on
    # email), and one of bob in between
    made = []
    for n in range(7):
        at = T0 + timedelta(seconds=n)
        record = notification(
            created_at=at,
            updated_at=at,
            channels=(Channel.SMS,) if n % 2 else (Channel.EMAIL,),
            owner="alice",
        )
        if n == 3:
            repository.add(notification(created_at=at, updated_at=at, owner="bob"))
        repository.add(record)
        repository.claim_round(record.id, 1, "A", at, at + timedelta(seconds=60))
        status = Status.FAILED if n % 2 else Status.SENT
        repository.complete_round(record.id, 1, "A", RoundResult(status, []), at)
        made.append(record.id)

    def everything(query: ListQuery) -> list[str]:
        ids, cursor = [], None
        while True:
            page = repository.list_page(
                ListQuery(query.owner, query.status, query.channel, query.limit, cursor)
            )
            ids += [n.id for n in page.items]
            assert len(page.items) <= query.limit
            if page.next_cursor is None:
                return ids
            cursor = page.next_cursor

    # THEN alice's lists hold exactly hers, newest first, page by page
    assert everything(ListQuery("alice", limit=3)) == made[::-1]
    assert everything(ListQuery("alice", Status.FAILED, limit=2)) == made[1::2][::-1]
    assert everything(ListQuery("alice", channel=Channel.EMAIL, limit=2)) == made[0::2][::-1]
    assert everything(ListQuery("alice", Status.SENT, Channel.SMS, limit=2)) == []
    assert len(everything(ListQuery("bob", Status.PENDING))) == 1
    with pytest.raises(InvalidCursor):
        repository.list_page(ListQuery("alice", cursor="bm90LWEta2V5"))
    # AND a cursor of alice's is no cursor for bob
    for wanted in [None, Status.FAILED]:
        cursor = repository.list_page(ListQuery("alice", wanted, limit=1)).next_cursor
        with pytest.raises(InvalidCursor):
            repository.list_page(ListQuery("bob", wanted, cursor=cursor))


def test_the_time_range_and_search_select_on_both_indexes_and_counts_follow(
    repository: DynamoDbNotificationRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN 6 records of carol, one per second, correlation ids order-0..order-5; the odd ones failed
    made = []
    for n in range(6):
        at = T0 + timedelta(seconds=n)
        record = notification(created_at=at, updated_at=at, owner="carol", correlation_id=f"order-{n}")
        repository.add(record)
        if n % 2:
            repository.claim_round(record.id, 1, "A", at, at + timedelta(seconds=60))
            repository.complete_round(record.id, 1, "A", RoundResult(Status.FAILED, []), at)
        made.append(record.id)
    repository.add(notification(created_at=T0, updated_at=T0, owner="dave", correlation_id="order-1"))
    window: dict[str, Any] = {
        "created_after": T0 + timedelta(seconds=1),
        "created_before": T0 + timedelta(seconds=4),
    }

    def listed(**query: Any) -> list[str]:
        return [n.id for n in repository.list_page(ListQuery("carol", **query)).items]

    # THEN a range is [after, before), newest first, with or without a status
    assert listed(**window) == made[1:4][::-1]
    assert listed(status=Status.FAILED, **window) == [made[3], made[1]]
    assert listed(created_after=T0 + timedelta(seconds=4)) == made[4:][::-1]
    assert listed(status=Status.PENDING, created_before=T0 + timedelta(seconds=2)) == [made[0]]
    # AND search finds a part of the id or of the correlation id
    assert listed(search="order-2") == [made[2]]
    assert listed(search=made[5][:13]) == [made[5]]
    assert listed(search="order", status=Status.FAILED, **window) == [made[3], made[1]]
    # AND counts see the same filters, every status present
    counts = repository.count_by_status(ListQuery("carol", **window))
    assert counts.counts[Status.FAILED] == 2 and counts.counts[Status.PENDING] == 1
    assert sum(counts.counts.values()) == 3 and not counts.capped
    assert sum(repository.count_by_status(ListQuery("carol", search="order-5")).counts.values()) == 1
    assert sum(repository.count_by_status(ListQuery("dave")).counts.values()) == 1
    # AND a cursor is only good for the time range it came from (DynamoDB refuses one outside it)
    cursor_at_3 = repository.list_page(ListQuery("carol", limit=1, **window)).next_cursor
    later = T0 + timedelta(seconds=4)
    with pytest.raises(InvalidCursor):
        repository.list_page(ListQuery("carol", created_after=later, cursor=cursor_at_3))
    assert repository.list_page(ListQuery("carol", cursor=cursor_at_3)).items  # no range: fine

    # AND counting stops at its read limit, saying the counts are lower bounds
    monkeypatch.setattr("notification_service.adapters.dynamodb_repository.MAX_COUNT_READ", 2)
    capped = repository.count_by_status(ListQuery("carol"))
    assert capped.capped and capped.counts[Status.PENDING] == 2 and capped.counts[Status.FAILED] == 2

    # AND a filter that matches rarely answers after a bounded read, with a cursor that goes on
    monkeypatch.setattr("notification_service.adapters.dynamodb_repository.FILTERED_READ", 2)
    monkeypatch.setattr("notification_service.adapters.dynamodb_repository.MAX_FILTERED_READ", 2)
    first = repository.list_page(ListQuery("carol", search="order-0", limit=1))
    assert first.items == [] and first.next_cursor is not None
    found: list[str] = []
    cursor: str | None = first.next_cursor
    while cursor is not None:
        page = repository.list_page(ListQuery("carol", search="order-0", limit=1, cursor=cursor))
        found += [n.id for n in page.items]
        cursor = page.next_cursor
    assert found == [made[0]]


def test_cancel_and_retry_are_conditional_on_the_status(repository: DynamoDbNotificationRepository) -> None:
    pending = notification(owner="alice")
    repository.add(pending)
    with pytest.raises(NotificationNotFound):  # another owner's is unknown
        repository.cancel(pending.id, "bob", "cancelled by bob", T0)
    cancelled = repository.cancel(pending.id, "alice", "cancelled by the client", T0)
    assert (cancelled.status, cancelled.status_reason) == (Status.CANCELLED, "cancelled by the client")
    with pytest.raises(TransitionRefused) as refused:
        repository.cancel(pending.id, "alice", "again", T0)
    assert refused.value.status is Status.CANCELLED
    with pytest.raises(ClaimRejected):  # its message in flight can never claim it
        repository.claim_round(pending.id, 1, "A", T0, T0 + timedelta(seconds=60))

    failed = notification()
    repository.add(failed)
    repository.claim_round(failed.id, 1, "A", T0, T0 + timedelta(seconds=60))
    repository.complete_round(failed.id, 1, "A", RoundResult(Status.FAILED, [], reason="all failed"), T0)
    with pytest.raises(NotificationNotFound):
        repository.retry(failed.id, "bob", T0, T0 + timedelta(seconds=60))
    retried = repository.retry(failed.id, ANONYMOUS, T0, T0 + timedelta(seconds=60))
    assert (retried.status, retried.status_reason, retried.rounds_before_retry) == (Status.RETRYING, None, 1)
    assert [c.id for c in repository.stuck(Status.RETRYING, T0 + timedelta(seconds=60), 10)] == [failed.id]
    assert repository.claim_round(failed.id, 2, "B", T0, T0 + timedelta(seconds=60)).lease_owner == "B"
    with pytest.raises(TransitionRefused):
        repository.retry(failed.id, ANONYMOUS, T0, T0)
    with pytest.raises(NotificationNotFound):
        repository.cancel("missing", ANONYMOUS, "x", T0)


def test_a_scheduled_record_is_claimed_only_once_due(repository: DynamoDbNotificationRepository) -> None:
    due = T0 + timedelta(minutes=20)
    scheduled = notification(status=Status.SCHEDULED, send_at=due)
    repository.add(scheduled)
    assert repository.get(scheduled.id).send_at == due
    assert [c.id for c in repository.stuck(Status.SCHEDULED, due + timedelta(seconds=60), 10)] == [
        scheduled.id
    ]

    with pytest.raises(ClaimRejected) as early:
        repository.claim_round(scheduled.id, 1, "A", due - timedelta(seconds=1), due + timedelta(seconds=59))
    assert early.value.current.status is Status.SCHEDULED
    claimed = repository.claim_round(scheduled.id, 1, "A", due, due + timedelta(seconds=60))
    assert claimed.status is Status.PROCESSING


def test_batch_writes_and_batch_sends_store_and_queue_every_item(
    repository: DynamoDbNotificationRepository, queue: SqsDeliveryQueue, settings: Settings
) -> None:
    made = [notification() for _ in range(30)]  # two BatchWriteItem calls, three SendMessageBatch calls

    assert repository.add_many(made) == set()
    assert queue.enqueue_many([(DeliveryMessage(n.id, 1, "cid-1"), 0) for n in made]) == set()

    assert [repository.get(n.id) for n in made] == made
    sqs = boto3.client("sqs", endpoint_url=settings.aws_endpoint_url)
    seen: set[str] = set()
    while True:
        got = sqs.receive_message(QueueUrl=settings.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            break
        seen |= {json.loads(m["Body"])["notification_id"] for m in got}
    assert seen == {n.id for n in made}


def test_batch_calls_against_missing_resources_answer_every_id_as_failed(emulator: Emulator) -> None:
    made = [notification() for _ in range(3)]
    missing_table = DynamoDbNotificationRepository(
        dynamodb_client(emulator.endpoint_url), "no-such-table", timedelta(days=1)
    )
    missing_queue = SqsDeliveryQueue(
        sqs_client(emulator.endpoint_url), f"{emulator.endpoint_url}/123456789012/none"
    )

    assert missing_table.add_many(made) == {n.id for n in made}
    assert missing_queue.enqueue_many([(DeliveryMessage(n.id, 1, "c"), 0) for n in made]) == {
        n.id for n in made
    }


def test_templates_are_stored_versioned_listed_and_deleted_in_the_table(settings: Settings) -> None:
    store = DynamoDbTemplateStore(dynamodb_client(settings.aws_endpoint_url), settings.table_name)
    parts = {
        Channel.EMAIL: TemplatePart("Hi {{ n }}", "S {{ n }}", "<b>{{ n }}</b>"),
        Channel.SMS: TemplatePart("x"),
    }

    first = store.put("welcome", parts, T0)
    second = store.put("welcome", {Channel.SMS: TemplatePart("y")}, T0 + timedelta(hours=1))
    store.put("another", {Channel.TELEGRAM: TemplatePart("z")}, T0)

    assert (first.version, first.parts) == (1, parts)
    assert (second.version, second.created_at, second.updated_at) == (2, T0, T0 + timedelta(hours=1))
    assert store.get("welcome").parts == {Channel.SMS: TemplatePart("y")}
    assert [t.name for t in store.list()] == ["another", "welcome"]
    store.delete("welcome")
    with pytest.raises(TemplateNotFound):
        store.get("welcome")
    with pytest.raises(TemplateNotFound):
        store.delete("welcome")


def test_a_notification_keeps_its_rendered_contents(repository: DynamoDbNotificationRepository) -> None:
    contents = {Channel.EMAIL: Content("t", "s", "<p>h</p>"), Channel.SMS: Content("short")}
    made = notification(contents=contents, template="welcome", template_version=4, routing=Routing.ALL)
    repository.add(made)
    assert repository.get(made.id) == made


def test_a_record_from_before_owners_belongs_to_the_anonymous_caller(
    repository: DynamoDbNotificationRepository, settings: Settings
) -> None:
    # GIVEN a record stored without an owner attribute (as before API keys)
    legacy = notification()
    repository.add(legacy)
    dynamodb_client(settings.aws_endpoint_url).update_item(
        TableName=settings.table_name,
        Key={"pk": {"S": f"NOTIFICATION#{legacy.id}"}, "sk": {"S": "NOTIFICATION"}},
        UpdateExpression="REMOVE #owner",
        ExpressionAttributeNames={"#owner": "owner"},
    )
    # THEN it reads as ANONYMOUS's, and only the anonymous caller may cancel it
    assert repository.get_owned(legacy.id, ANONYMOUS).owner == ANONYMOUS
    with pytest.raises(NotificationNotFound):
        repository.get_owned(legacy.id, "alice")
    with pytest.raises(NotificationNotFound):
        repository.cancel(legacy.id, "alice", "x", T0)
    assert repository.cancel(legacy.id, ANONYMOUS, "x", T0).status is Status.CANCELLED


def test_a_terminal_record_owes_its_webhook_until_the_event_is_settled(
    repository: DynamoDbNotificationRepository,
) -> None:
    # GIVEN a record with a callback_url, sent, owing its webhook from T0 + 60 s
    n = notification(callback_url="https://hooks.example.com/x")
    repository.add(n)
    repository.claim_round(n.id, 1, "A", T0, T0 + timedelta(seconds=60))
    due = T0 + timedelta(seconds=60)
    repository.complete_round(n.id, 1, "A", RoundResult(Status.SENT, [], Channel.EMAIL, webhook_due=due), T0)
    later = T0 + timedelta(seconds=61)

    def owed_now() -> list[str]:
        return [o.notification_id for o in repository.webhooks_owed(later, 100) if o.notification_id == n.id]

    assert n.id not in [o.notification_id for o in repository.webhooks_owed(T0, 100)]
    [owed] = [o for o in repository.webhooks_owed(later, 100) if o.notification_id == n.id]
    assert (owed.status, owed.correlation_id) == ("sent", n.correlation_id)
    # WHEN the sweeper postpones it, it is not owed again before then
    assert repository.postpone_webhook(owed, T0 + timedelta(seconds=300))
    assert owed_now() == []
    # AND a failed attempt keeps it owed (at the next due time); the last attempt settles it
    first = WebhookAttempt("evt_1", "sent", 1, T0, False, 503, "HTTP 503", 10.5)
    repository.record_webhook(n.id, first, next_due=T0)
    assert owed_now() == [n.id]
    last = WebhookAttempt("evt_1", "sent", 2, later, True, 204, None, 8.0, final=True)
    repository.record_webhook(n.id, last, next_due=None)
    assert owed_now() == []
    record = repository.get(n.id)
    assert record.webhooks == (dataclasses.replace(first, duration_ms=10), last)  # whole ms are kept
    assert record.callback_url == "https://hooks.example.com/x"
    assert not repository.postpone_webhook(owed, later)  # settled: nothing to postpone
    # AND an attempt for an event no longer owed is still recorded
    repository.record_webhook(n.id, WebhookAttempt("evt_0", "cancelled", 1, later, False), None)
    assert len(repository.get(n.id).webhooks) == 3


def test_a_receipt_moves_only_a_sent_sms_with_that_message_id(
    repository: DynamoDbNotificationRepository,
) -> None:
    n = notification(channels=(Channel.SMS,))
    repository.add(n)
    repository.claim_round(n.id, 1, "A", T0, T0 + timedelta(seconds=60))
    repository.complete_round(n.id, 1, "A", RoundResult(Status.SENT, [], Channel.SMS, "SM1"), T0)
    assert not repository.record_receipt(n.id, "SM0", Status.DELIVERED, None, T0, None)
    assert repository.record_receipt(n.id, "SM1", Status.UNDELIVERED, "carrier said no", T0, None)
    assert not repository.record_receipt(n.id, "SM1", Status.DELIVERED, None, T0, None)  # never back
    record = repository.get(n.id)
    assert (record.status, record.status_reason) == (Status.UNDELIVERED, "carrier said no")
    listed = repository.list_page(ListQuery(n.owner, Status.UNDELIVERED, limit=100)).items
    assert n.id in {x.id for x in listed}


def test_a_claim_writes_the_first_sends_intent_unless_an_earlier_one_is_there(
    repository: DynamoDbNotificationRepository,
) -> None:
    n = notification()
    repository.add(n)
    claimed = repository.claim_round(n.id, 1, "A", T0, T0 + timedelta(seconds=60), intent_token="t-A")
    assert claimed.sending == SendInProgress(1, None, T0, "t-A")
    # A dies; B claims the round again later: A's intent stays, to be resolved
    later = T0 + timedelta(seconds=61)
    again = repository.claim_round(n.id, 1, "B", later, later + timedelta(seconds=60), intent_token="t-B")
    assert again.sending == SendInProgress(1, None, T0, "t-A")
    assert again.lease_owner == "B"
    # a later send's intent names its channel; the result clears it
    repository.begin_send(n.id, 1, "B", Channel.SMS, [], later)
    assert repository.get(n.id).sending == SendInProgress(1, Channel.SMS, later)
    repository.complete_round(n.id, 1, "B", RoundResult(Status.SENT, [], Channel.SMS), later)
    assert repository.get(n.id).sending is None
