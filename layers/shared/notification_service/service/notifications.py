"""Accepting a notification (store, then enqueue its first round) and looking one up."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from notification_service.clock import isoformat
from notification_service.domain.model import Channel, Notification, Status
from notification_service.domain.recipient import Recipient
from notification_service.errors import InvalidIdempotencyKey
from notification_service.ports import (
    DeliveryMessage,
    DeliveryQueue,
    IdempotencyGuard,
    NotificationRepository,
)

MAX_IDEMPOTENCY_KEY_LENGTH = 255


@dataclass(frozen=True)
class NewNotification:
    recipient: Recipient
    message: str
    channels: tuple[Channel, ...]
    subject: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class Receipt:
    """The answer to an accepted notification; also what an idempotent replay answers."""

    id: str
    status: Status
    created_at: str
    replayed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status.value, "created_at": self.created_at}


class NotificationService:
    def __init__(
        self,
        repository: NotificationRepository,
        queue: DeliveryQueue,
        idempotency: IdempotencyGuard,
        now: Callable[[], datetime],
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._repository = repository
        self._queue = queue
        self._idempotency = idempotency
        self._now = now
        self._new_id = new_id

    def accept(
        self,
        new: NewNotification,
        correlation_id: str,
        idempotency_key: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> Receipt:
        """Store the record, then enqueue round 1. With a key, the same payload is accepted only once."""
        if idempotency_key is None:
            return self._store_and_enqueue(new, correlation_id)
        if not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
            raise InvalidIdempotencyKey(
                f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters"
            )
        answer, replayed = self._idempotency.run(
            idempotency_key, payload or {}, lambda: self._store_and_enqueue(new, correlation_id).as_dict()
        )
        return Receipt(answer["id"], Status(answer["status"]), answer["created_at"], replayed=replayed)

    def _store_and_enqueue(self, new: NewNotification, correlation_id: str) -> Receipt:
        now = self._now()
        notification = Notification(
            id=self._new_id(),
            recipient=new.recipient,
            message=new.message,
            channels=new.channels,
            subject=new.subject,
            metadata=new.metadata,
            correlation_id=correlation_id,
            created_at=now,
            updated_at=now,
        )
        self._repository.add(notification)
        self._queue.enqueue(DeliveryMessage(notification.id, 1, correlation_id))
        return Receipt(notification.id, notification.status, isoformat(notification.created_at))

    def get(self, notification_id: str) -> Notification:
        return self._repository.get(notification_id)
