"""In-memory fakes of the ports, for unit tests. They keep the same conditions as the real adapters
(the integration tests prove the adapters; these let the domain be tested without a network)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from notification_service.domain.delivery import Delivered, DeliveryFailed, OutgoingMessage, SendOutcome
from notification_service.domain.model import CLAIMABLE_STATUSES, Channel, Notification, Status
from notification_service.errors import (
    DependencyUnavailable,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    NotificationNotFound,
)
from notification_service.ports import ClaimRejected, DeliveryMessage, LeaseLost, RoundResult
from notification_service.settings import Settings


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeRepository:
    def __init__(self) -> None:
        self.items: dict[str, Notification] = {}
        self.unavailable = False
        self.writes = 0

    def add(self, notification: Notification) -> None:
        self._available()
        assert notification.id not in self.items
        self.items[notification.id] = notification
        self.writes += 1

    def get(self, notification_id: str) -> Notification:
        self._available()
        try:
            return self.items[notification_id]
        except KeyError:
            raise NotificationNotFound(notification_id) from None

    def claim_round(
        self, notification_id: str, round_no: int, owner: str, now: datetime, lease_until: datetime
    ) -> Notification:
        current = self.get(notification_id)
        fresh = current.status in CLAIMABLE_STATUSES and current.round == round_no - 1
        expired = (
            current.status is Status.PROCESSING
            and current.round == round_no
            and current.lease_until is not None
            and current.lease_until <= now
        )
        if not (fresh or expired):
            raise ClaimRejected(current)
        claimed = current.with_changes(
            status=Status.PROCESSING,
            round=round_no,
            lease_owner=owner,
            lease_until=lease_until,
            updated_at=now,
            next_attempt_at=None,
        )
        self.items[notification_id] = claimed
        self.writes += 1
        return claimed

    def complete_round(
        self, notification_id: str, round_no: int, owner: str, result: RoundResult, now: datetime
    ) -> Notification:
        current = self.get(notification_id)
        if not (
            current.status is Status.PROCESSING and current.round == round_no and current.lease_owner == owner
        ):
            raise LeaseLost(notification_id)
        done = current.with_changes(
            status=result.status,
            attempts=current.attempts + tuple(result.attempts),
            channel_used=result.channel_used or current.channel_used,
            provider_message_id=result.provider_message_id or current.provider_message_id,
            next_attempt_at=result.next_attempt_at,
            lease_owner=None,
            lease_until=None,
            updated_at=now,
        )
        self.items[notification_id] = done
        self.writes += 1
        return done

    def check(self) -> None:
        self._available()

    def _available(self) -> None:
        if self.unavailable:
            raise DependencyUnavailable("dynamodb", "fake outage")


class FakeQueue:
    def __init__(self) -> None:
        self.sent: list[tuple[DeliveryMessage, int]] = []
        self.unavailable = False

    def enqueue(self, message: DeliveryMessage, delay_seconds: int = 0) -> None:
        if self.unavailable:
            raise DependencyUnavailable("sqs", "fake outage")
        self.sent.append((message, delay_seconds))

    def check(self) -> None:
        if self.unavailable:
            raise DependencyUnavailable("sqs", "fake outage")


class FakeIdempotency:
    """Same key + same payload -> first answer (replayed); other payload -> reused; `in_flight` keys."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self.in_flight: set[str] = set()
        self.unavailable = False

    def run(
        self, key: str, payload: dict[str, Any], action: Callable[[], dict[str, Any]]
    ) -> tuple[dict[str, Any], bool]:
        if self.unavailable:
            raise DependencyUnavailable("redis", "fake outage")
        if key in self.in_flight:
            raise IdempotencyKeyInFlight(key)
        if key in self.answers:
            stored_payload, answer = self.answers[key]
            if stored_payload != payload:
                raise IdempotencyKeyReused(key)
            return dict(answer), True
        answer = action()
        self.answers[key] = (payload, answer)
        return answer, False

    def check(self) -> None:
        if self.unavailable:
            raise DependencyUnavailable("redis", "fake outage")

    def register_lambda_context(self, context: object) -> None:
        self.context = context


@dataclass
class FakeProvider:
    """Answers from a script (one outcome per call; the last repeats) and records what it was asked."""

    channel: Channel
    script: list[SendOutcome | Exception] = field(default_factory=list)
    sent: list[OutgoingMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def send(self, message: OutgoingMessage) -> SendOutcome:
        with self.lock:
            self.sent.append(message)
            outcome = self.script[min(len(self.sent), len(self.script)) - 1] if self.script else None
        if isinstance(outcome, Exception):
            raise outcome
        return outcome or Delivered(f"fake-{self.channel.value}-{len(self.sent)}")


def ok() -> Delivered:
    return Delivered("ok")


def transient(reason: str = "timeout") -> DeliveryFailed:
    return DeliveryFailed.transient(reason)


def permanent(reason: str = "invalid address") -> DeliveryFailed:
    return DeliveryFailed.permanent(reason)


class ApiFakes:
    """What stands behind ApiFunction in its unit tests (installed by the `api_fakes` fixture)."""

    def __init__(self) -> None:
        self.repository = FakeRepository()
        self.queue = FakeQueue()
        self.idempotency = FakeIdempotency()
        self.clock = FakeClock()
        self.settings = Settings(table_name="t", queue_url="q", max_body_bytes=2048)
