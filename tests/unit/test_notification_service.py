"""NotificationService (accept, get) and the readiness check."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from notification_service.clock import isoformat
from notification_service.domain.api_keys import ANONYMOUS
from notification_service.domain.model import Channel, Status
from notification_service.domain.recipient import Recipient
from notification_service.errors import (
    DependencyUnavailable,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    NotificationNotFound,
)
from notification_service.ports import DeliveryMessage, HealthCheck
from notification_service.service.notifications import (
    NewNotification,
    NotificationService,
    Receipt,
    notification_id_for_key,
)
from notification_service.service.readiness import check_dependencies

from tests.fakes import FakeClock, FakeIdempotency, FakeQueue, FakeRepository

NEW = NewNotification(
    recipient=Recipient(email="user@example.com"),
    message="Hello from notification service!",
    channels=(Channel.EMAIL, Channel.SMS),
    subject="Hi",
    metadata={"order": 42},
)
PAYLOAD: dict[str, Any] = {"recipient": "user@example.com", "message": "Hello from notification service!"}


@dataclass
class World:
    clock: FakeClock = field(default_factory=FakeClock)
    repo: FakeRepository = field(default_factory=FakeRepository)
    queue: FakeQueue = field(default_factory=FakeQueue)
    idempotency: FakeIdempotency = field(default_factory=FakeIdempotency)
    ids: Iterator[str] = field(default_factory=lambda: iter(f"id-{n}" for n in range(1, 100)))

    def service(self) -> NotificationService:
        return NotificationService(
            repository=self.repo,
            queue=self.queue,
            idempotency=self.idempotency,
            now=self.clock,
            new_id=lambda: next(self.ids),
        )


@pytest.fixture
def world() -> World:
    return World()


def test_accept_stores_a_pending_record_and_enqueues_round_one(world: World) -> None:
    # WHEN a notification is accepted
    receipt = world.service().accept(NEW, correlation_id="corr-1")

    # THEN the receipt names the new pending record
    assert receipt == Receipt("id-1", Status.PENDING, isoformat(world.clock()), replayed=False)
    assert receipt.created_at.endswith("Z")

    # AND the record holds the request at round 0 with its correlation id
    record = world.repo.get("id-1")
    assert record.status is Status.PENDING
    assert record.round == 0
    assert record.correlation_id == "corr-1"
    assert record.recipient == NEW.recipient
    assert record.message == NEW.message
    assert record.channels == (Channel.EMAIL, Channel.SMS)
    assert record.subject == "Hi"
    assert record.metadata == {"order": 42}
    assert record.attempts == ()
    assert record.created_at == record.updated_at == world.clock()

    # AND round 1 is queued without delay
    assert world.queue.sent == [(DeliveryMessage("id-1", 1, "corr-1"), 0)]


def test_receipt_as_dict_is_the_api_answer(world: World) -> None:
    receipt = world.service().accept(NEW, correlation_id="corr-1")

    assert receipt.as_dict() == {
        "id": "id-1",
        "status": "pending",
        "created_at": "2026-11-25T12:00:00.000Z",
    }


def test_default_ids_are_unique_uuids() -> None:
    world = World()
    service = NotificationService(world.repo, world.queue, world.idempotency, world.clock)

    first = service.accept(NEW, correlation_id="c")
    second = service.accept(NEW, correlation_id="c")

    assert first.id != second.id
    assert len(first.id) == 36
    assert set(world.repo.items) == {first.id, second.id}


def test_same_idempotency_key_and_payload_is_replayed(world: World) -> None:
    # GIVEN a notification accepted with an idempotency key
    service = world.service()
    first = service.accept(NEW, "corr-1", idempotency_key="key-1", payload=PAYLOAD)

    # WHEN the same request comes again with the same key
    world.clock.advance(5)
    second = service.accept(NEW, "corr-2", idempotency_key="key-1", payload=dict(PAYLOAD))

    # THEN it answers the first receipt, marked replayed, and stores and enqueues nothing new
    assert first.replayed is False
    assert second.replayed is True
    assert (second.id, second.status, second.created_at) == (first.id, first.status, first.created_at)
    assert list(world.repo.items) == [notification_id_for_key("key-1")]
    assert world.queue.sent == [(DeliveryMessage(first.id, 1, "corr-1"), 0)]


def test_same_key_with_another_payload_is_rejected(world: World) -> None:
    service = world.service()
    service.accept(NEW, "corr-1", idempotency_key="key-1", payload=PAYLOAD)

    with pytest.raises(IdempotencyKeyReused):
        service.accept(NEW, "corr-1", idempotency_key="key-1", payload={**PAYLOAD, "message": "other"})
    assert len(world.repo.items) == 1
    assert len(world.queue.sent) == 1


def test_key_in_flight_is_rejected(world: World) -> None:
    world.idempotency.in_flight.add("key-1")

    with pytest.raises(IdempotencyKeyInFlight):
        world.service().accept(NEW, "corr-1", idempotency_key="key-1", payload=PAYLOAD)
    assert world.repo.items == {}
    assert world.queue.sent == []


def test_without_a_key_each_call_creates_a_notification(world: World) -> None:
    service = world.service()

    ids = [service.accept(NEW, "corr-1").id for _ in range(2)]

    assert ids == ["id-1", "id-2"]
    assert world.idempotency.answers == {}
    assert len(world.queue.sent) == 2


def test_get_returns_the_record(world: World) -> None:
    service = world.service()
    receipt = service.accept(NEW, "corr-1")

    record = service.get(receipt.id, ANONYMOUS)

    assert record.id == receipt.id
    assert record.message == NEW.message


def test_get_unknown_id_raises_not_found(world: World) -> None:
    with pytest.raises(NotificationNotFound) as caught:
        world.service().get("nope", ANONYMOUS)
    assert caught.value.notification_id == "nope"


def test_repository_outage_propagates_and_nothing_is_enqueued(world: World) -> None:
    world.repo.unavailable = True

    with pytest.raises(DependencyUnavailable) as caught:
        world.service().accept(NEW, "corr-1")
    assert caught.value.dependency == "dynamodb"
    assert world.queue.sent == []


def test_repository_outage_with_a_key_is_not_remembered(world: World) -> None:
    # GIVEN the store is down on the first try
    world.repo.unavailable = True
    service = world.service()
    with pytest.raises(DependencyUnavailable):
        service.accept(NEW, "corr-1", idempotency_key="key-1", payload=PAYLOAD)

    # WHEN the client retries with the same key after the store recovers
    world.repo.unavailable = False
    receipt = service.accept(NEW, "corr-1", idempotency_key="key-1", payload=PAYLOAD)

    # THEN the notification is accepted for real, not replayed
    assert receipt.replayed is False
    assert world.queue.sent == [(DeliveryMessage(receipt.id, 1, "corr-1"), 0)]


def test_a_keyed_request_whose_enqueue_failed_is_finished_by_its_retry(world: World) -> None:
    # GIVEN the record is stored but SQS refuses the message: the client gets a 503
    world.queue.unavailable = True
    service = world.service()
    with pytest.raises(DependencyUnavailable) as caught:
        service.accept(NEW, "corr-1", idempotency_key="key-1", payload=PAYLOAD)
    assert caught.value.dependency == "sqs"
    stored = world.repo.get(notification_id_for_key("key-1"))
    assert stored.status is Status.PENDING  # left for the retry, or the sweeper

    # WHEN the client retries with the same key once SQS is back
    world.queue.unavailable = False
    receipt = service.accept(NEW, "corr-2", idempotency_key="key-1", payload=PAYLOAD)

    # THEN the same notification is enqueued, and no second one is stored
    assert receipt.id == stored.id
    assert receipt.replayed is True
    assert list(world.repo.items) == [stored.id]
    assert world.queue.sent == [(DeliveryMessage(stored.id, 1, "corr-1"), 0)]


def test_a_key_whose_record_outlived_its_idempotency_entry_still_names_that_notification(
    world: World,
) -> None:
    # GIVEN a keyed notification that was already delivered, and the cache forgot the key
    service = world.service()
    first = service.accept(NEW, "corr-1", idempotency_key="key-1", payload=PAYLOAD)
    world.repo.items[first.id] = world.repo.items[first.id].with_changes(status=Status.SENT, round=1)
    world.idempotency.answers.clear()

    # WHEN the same request comes again, and then another request with that key
    again = service.accept(NEW, "corr-1", idempotency_key="key-1", payload=PAYLOAD)
    world.idempotency.answers.clear()
    with pytest.raises(IdempotencyKeyReused):
        service.accept(NEW, "corr-1", idempotency_key="key-1", payload={**PAYLOAD, "message": "x"})

    # THEN the first is answered as it stands, and nothing is sent again
    assert (again.id, again.status, again.replayed) == (first.id, Status.SENT, True)
    assert len(world.queue.sent) == 1


def test_a_keyless_request_whose_enqueue_failed_is_cancelled_so_the_clients_retry_is_the_only_one(
    world: World,
) -> None:
    world.queue.unavailable = True

    with pytest.raises(DependencyUnavailable):
        world.service().accept(NEW, "corr-1")

    record = world.repo.get("id-1")
    assert record.status is Status.CANCELLED
    assert record.status_reason == "not queued: sqs was unavailable and the request was answered 503"
    assert world.repo.sweep_due == {}  # finished: the sweeper will not deliver it


def test_a_keyless_record_neither_queued_nor_cancelled_is_left_for_the_sweeper(world: World) -> None:
    world.queue.unavailable = True
    original_close = world.repo.close

    def store_down(*args: Any, **kwargs: Any) -> bool:
        raise DependencyUnavailable("dynamodb", "fake outage")

    world.repo.close = store_down  # type: ignore[method-assign]
    with pytest.raises(DependencyUnavailable):
        world.service().accept(NEW, "corr-1")
    world.repo.close = original_close  # type: ignore[method-assign]

    assert world.repo.get("id-1").status is Status.PENDING
    assert "id-1" in world.repo.sweep_due


# --- readiness ---------------------------------------------------------------


class Healthy:
    def check(self) -> None:
        return None


def test_check_dependencies_reports_each_dependency() -> None:
    # GIVEN the store and redis answer, the queue does not
    queue = FakeQueue()
    queue.unavailable = True
    checks: dict[str, HealthCheck] = {
        "dynamodb": FakeRepository(),
        "sqs": queue,
        "redis": FakeIdempotency(),
        "other": Healthy(),
    }

    # WHEN readiness is checked
    results = check_dependencies(checks)

    # THEN each dependency is named with "ok" or why it is unavailable
    assert results == {
        "dynamodb": "ok",
        "sqs": "unavailable: fake outage",
        "redis": "ok",
        "other": "ok",
    }


def test_check_dependencies_times_each_check() -> None:
    ticks = iter([0.0, 0.0021, 1.0, 1.5])
    latency: dict[str, float] = {}

    check_dependencies(
        {"dynamodb": Healthy(), "sqs": Healthy()}, latency_ms=latency, timer=lambda: next(ticks)
    )

    assert latency == {"dynamodb": 2.1, "sqs": 500.0}


def test_check_dependencies_all_ok() -> None:
    checks: dict[str, HealthCheck] = {"dynamodb": FakeRepository(), "sqs": FakeQueue()}

    assert check_dependencies(checks) == {"dynamodb": "ok", "sqs": "ok"}


def test_check_dependencies_with_nothing_to_check() -> None:
    assert check_dependencies({}) == {}


def test_queue_outage_propagates_to_the_caller(world: World) -> None:
    world.queue.unavailable = True

    with pytest.raises(DependencyUnavailable) as caught:
        world.service().accept(NEW, "corr-1")
    assert caught.value.dependency == "sqs"
    assert world.queue.sent == []
