"""Accepting a notification (store, then enqueue its first round) and looking one up.

Store then enqueue are two calls; either can fail. With an Idempotency-Key the notification's id is
derived from the key, so the record is the proof of the first request: a retry after a failed
enqueue finds it and finishes the job (enqueues it) instead of storing a second notification.
Without a key, a record whose enqueue failed is cancelled (the client was told 503 and will send
again); if even that write fails the sweeper delivers it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger

from notification_service.clock import isoformat
from notification_service.domain.api_keys import ANONYMOUS
from notification_service.domain.lifecycle import CANCELLED_BY_CLIENT
from notification_service.domain.model import Channel, Notification, Routing, Status
from notification_service.domain.receipts import ReceiptStatus
from notification_service.domain.recipient import Recipient
from notification_service.domain.schedule import SQS_MAX_DELAY_SECONDS, hop_delay
from notification_service.domain.template import Rendered
from notification_service.domain.webhook import CallbackUrlRefused, check_callback_url
from notification_service.errors import (
    DependencyUnavailable,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidField,
    InvalidIdempotencyKey,
)
from notification_service.ports import (
    DeliveryMessage,
    DeliveryQueue,
    IdempotencyGuard,
    ListQuery,
    Metrics,
    NotificationAlreadyExists,
    NotificationRepository,
    Page,
    StatusCounts,
    WebhookQueue,
)
from notification_service.service.owed_webhook import enqueue_owed_webhook

logger = Logger(child=True)
MAX_IDEMPOTENCY_KEY_LENGTH = 255
# Ids of notifications accepted under an Idempotency-Key: uuid5(this namespace, key).
IDEMPOTENT_ID_NAMESPACE = uuid.UUID("5b0c8f4e-9a53-4c3e-8d7f-2f1d6a0e4b11")
NOT_QUEUED_REASON = "not queued: {dependency} was unavailable and the request was answered 503"


def scoped_key(idempotency_key: str, owner: str = ANONYMOUS) -> str:
    """Idempotency-Keys are per API key: two clients using the same key never meet. A header value
    cannot hold a newline, so no key of one owner can spell another's."""
    return idempotency_key if owner == ANONYMOUS else f"{owner}\n{idempotency_key}"


def notification_id_for_key(idempotency_key: str, owner: str = ANONYMOUS) -> str:
    return str(uuid.uuid5(IDEMPOTENT_ID_NAMESPACE, scoped_key(idempotency_key, owner)))


def request_hash(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class ReceiptOutcome(StrEnum):
    RECORDED = "recorded"
    ALREADY_FINAL = "already_final"  # the same receipt again (providers repeat callbacks)
    CONFLICTING = "conflicting"  # another final state was recorded first: a later state never moves back
    NOT_THIS_MESSAGE = "not_this_message"  # another round's or channel's message
    TOO_EARLY = "too_early"  # the round that sent it has not recorded the message id yet


@dataclass(frozen=True)
class NewNotification:
    recipient: Recipient
    message: str
    channels: tuple[Channel, ...]
    subject: str | None = None
    metadata: dict[str, Any] | None = None
    send_at: datetime | None = None  # not before this time (past or absent: now)
    routing: Routing = Routing.FALLBACK
    rendered: Rendered | None = None  # made from a template: each channel's content
    owner: str = ANONYMOUS  # the API key (its name) asking: it alone sees the notification
    callback_url: str | None = None  # checked by the caller (domain/webhook.py check_callback_url)


@dataclass(frozen=True)
class BatchItem:
    new: NewNotification
    idempotency_key: str | None = None
    payload: dict[str, Any] | None = None


@dataclass(frozen=True)
class Receipt:
    """The answer to an accepted notification; also what an idempotent replay answers."""

    id: str
    status: Status
    created_at: str
    replayed: bool = False

    def as_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"id": self.id, "status": self.status.value, "created_at": self.created_at}
        if self.replayed:
            answer["replayed"] = True
        return answer


class NotificationService:
    def __init__(
        self,
        repository: NotificationRepository,
        queue: DeliveryQueue,
        idempotency: IdempotencyGuard,
        now: Callable[[], datetime],
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        retry_grace: timedelta = timedelta(seconds=60),
        max_delay_seconds: int = SQS_MAX_DELAY_SECONDS,
        metrics: Metrics | None = None,
        webhooks: WebhookQueue | None = None,
        allow_private_webhooks: bool = False,
    ) -> None:
        self._webhooks = webhooks
        self._allow_private_webhooks = allow_private_webhooks
        self._metrics = metrics
        self._retry_grace = retry_grace
        self._max_delay = max_delay_seconds
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
        payload = payload or {}
        answer, replayed = self._idempotency.run(
            scoped_key(idempotency_key, new.owner),
            payload,
            lambda: self._store_and_enqueue(
                new,
                correlation_id,
                notification_id_for_key(idempotency_key, new.owner),
                request_hash(payload),
            ).as_dict(),
        )
        return Receipt(
            answer["id"],
            Status(answer["status"]),
            answer["created_at"],
            replayed=replayed or bool(answer.get("replayed")),
        )

    def accept_many(self, items: Sequence[BatchItem], correlation_id: str) -> list[Receipt | Exception]:
        """Each item on its own: one with an Idempotency-Key goes the way of `accept`; the others are
        stored and enqueued in batches. An item's failure is its answer, never its neighbours'."""
        answers: dict[int, Receipt | Exception] = {}
        fresh: list[tuple[int, Notification]] = []
        for number, item in enumerate(items):
            if item.idempotency_key is None:
                fresh.append((number, self._new_record(item.new, correlation_id)))
                continue
            try:
                answers[number] = self.accept(item.new, correlation_id, item.idempotency_key, item.payload)
            except (DependencyUnavailable, IdempotencyKeyReused, IdempotencyKeyInFlight) as exc:
                answers[number] = exc
        not_stored = self._repository.add_many([n for _, n in fresh]) if fresh else set()
        stored = [(number, n) for number, n in fresh if n.id not in not_stored]
        not_queued = self._queue.enqueue_many(
            [(DeliveryMessage(n.id, 1, correlation_id), self._first_delay(n)) for _, n in stored]
        )
        for number, notification in fresh:
            if notification.id in not_stored:
                answers[number] = DependencyUnavailable("dynamodb", "batch write not processed")
            elif notification.id in not_queued:
                outage = DependencyUnavailable("sqs", "batch send failed")
                self._cancel_unqueued(notification, outage)
                answers[number] = outage
            else:
                answers[number] = Receipt(
                    notification.id, notification.status, isoformat(notification.created_at)
                )
        self._count_accepted(len(stored) - len(not_queued))
        return [answers[number] for number in range(len(items))]

    def _new_record(
        self,
        new: NewNotification,
        correlation_id: str,
        notification_id: str | None = None,
        bound_to: str | None = None,
    ) -> Notification:
        now = self._now()
        due = new.send_at if new.send_at is not None and new.send_at > now else None
        return Notification(
            id=notification_id or self._new_id(),
            status=Status.SCHEDULED if due else Status.PENDING,
            send_at=due,
            routing=new.routing,
            contents=dict(new.rendered.contents) if new.rendered else None,
            template=new.rendered.template if new.rendered else None,
            template_version=new.rendered.version if new.rendered else None,
            owner=new.owner,
            callback_url=new.callback_url,
            recipient=new.recipient,
            message=new.message,
            channels=new.channels,
            subject=new.subject,
            metadata=new.metadata,
            correlation_id=correlation_id,
            created_at=now,
            updated_at=now,
            request_hash=bound_to,
        )

    def _store_and_enqueue(
        self,
        new: NewNotification,
        correlation_id: str,
        notification_id: str | None = None,
        bound_to: str | None = None,
    ) -> Receipt:
        notification = self._new_record(new, correlation_id, notification_id, bound_to)
        try:
            self._repository.add(notification)
        except NotificationAlreadyExists:
            return self._finish_earlier_request(notification)
        try:
            self._queue.enqueue(
                DeliveryMessage(notification.id, 1, correlation_id), self._first_delay(notification)
            )
        except DependencyUnavailable as exc:
            if bound_to is None:
                self._cancel_unqueued(notification, exc)
            raise
        self._count_accepted(1)
        return Receipt(notification.id, notification.status, isoformat(notification.created_at))

    def _count_accepted(self, how_many: int) -> None:
        if self._metrics is not None and how_many:
            self._metrics.count("notifications_accepted_total", how_many)

    def _finish_earlier_request(self, attempted: Notification) -> Receipt:
        """The key's notification was stored by an earlier request (whose answer may have been a 503,
        or whose idempotency record expired). Same request: enqueue it if it never left `pending`
        round 0 (a duplicate message loses its claim), and answer with it."""
        earlier = self._repository.get(attempted.id)
        if earlier.request_hash != attempted.request_hash:
            raise IdempotencyKeyReused("this Idempotency-Key was used with a different request body")
        if earlier.status in (Status.PENDING, Status.SCHEDULED) and earlier.round == 0:
            self._queue.enqueue(
                DeliveryMessage(earlier.id, 1, earlier.correlation_id), self._first_delay(earlier)
            )
        return Receipt(earlier.id, earlier.status, isoformat(earlier.created_at), replayed=True)

    def _first_delay(self, notification: Notification) -> int:
        if notification.send_at is None:
            return 0
        return hop_delay(notification.send_at, self._now(), self._max_delay)

    def _cancel_unqueued(self, notification: Notification, cause: DependencyUnavailable) -> None:
        try:
            self._repository.close(
                notification.id,
                expected=notification.status,
                expected_round=0,
                status=Status.CANCELLED,
                reason=NOT_QUEUED_REASON.format(dependency=cause.dependency),
                now=self._now(),
            )
        except DependencyUnavailable:
            logger.error(
                "record stored but neither queued nor cancelled; the sweeper will deliver it",
                extra={"notification_id": notification.id},
            )

    def get(self, notification_id: str, owner: str) -> Notification:
        """Another owner's notification is answered as unknown (NotificationNotFound)."""
        return self._repository.get_owned(notification_id, owner)

    def list(self, query: ListQuery) -> Page:
        return self._repository.list_page(query)

    def count_by_status(self, query: ListQuery) -> StatusCounts:
        return self._repository.count_by_status(query)

    def record_receipt(
        self, notification_id: str, provider_message_id: str, receipt: ReceiptStatus, error_code: str | None
    ) -> ReceiptOutcome:
        """The carrier's final word on an sms the provider accepted (domain/receipts.py): `sent` ->
        `delivered` / `undelivered`, once; the callback_url is owed that event too."""
        current = self._repository.get(notification_id)
        status = Status(receipt.value)
        if current.channel_used is not Channel.SMS or current.provider_message_id != provider_message_id:
            if current.status is Status.PROCESSING:  # the round has not written the message id yet
                return ReceiptOutcome.TOO_EARLY
            return ReceiptOutcome.NOT_THIS_MESSAGE
        if current.status is not Status.SENT:
            return ReceiptOutcome.ALREADY_FINAL if current.status is status else ReceiptOutcome.CONFLICTING
        now = self._now()
        owes = current.callback_url is not None and self._webhooks is not None
        reason = None
        if status is Status.UNDELIVERED:
            reason = "the carrier reported it undelivered" + (f" (error {error_code})" if error_code else "")
        recorded = self._repository.record_receipt(
            notification_id,
            provider_message_id,
            status,
            reason,
            now,
            webhook_due=now + self._retry_grace if owes else None,
        )
        if not recorded:  # another receipt won the race
            return ReceiptOutcome.ALREADY_FINAL
        if owes:
            enqueue_owed_webhook(self._webhooks, notification_id, status.value, current.correlation_id)
        return ReceiptOutcome.RECORDED

    def check_callback(self, url: str) -> None:
        """A callback_url this deployment can honour (it has a webhook queue), to an address it may
        reach. Raises InvalidField naming `callback_url`."""
        if self._webhooks is None:
            raise InvalidField("callback_url", "webhooks are not configured on this deployment")
        try:
            check_callback_url(url, allow_private=self._allow_private_webhooks)
        except CallbackUrlRefused as exc:
            raise InvalidField("callback_url", exc.reason) from None

    def cancel(self, notification_id: str, owner: str) -> Notification:
        """Never sent after this: a round that claims it afterwards finds it cancelled. Its callback_url
        (if any) is owed the `cancelled` event, sent now or by the sweeper."""
        # Whether a webhook is owed needs the record: read only where webhooks exist (the cancel
        # itself is conditional on the owner and the status).
        owes = (
            self._webhooks is not None
            and self._repository.get_owned(notification_id, owner).callback_url is not None
        )
        now = self._now()
        cancelled = self._repository.cancel(
            notification_id,
            owner,
            CANCELLED_BY_CLIENT,
            now,
            webhook_due=now + self._retry_grace if owes else None,
        )
        if owes:
            enqueue_owed_webhook(
                self._webhooks, cancelled.id, Status.CANCELLED.value, cancelled.correlation_id
            )
        return cancelled

    def retry(self, notification_id: str, owner: str) -> Notification:
        """A failed notification gets fresh rounds: its next round is enqueued now (if that enqueue
        fails, the record is `retrying` and the sweeper enqueues it)."""
        now = self._now()
        retried = self._repository.retry(notification_id, owner, now, now + self._retry_grace)
        self._queue.enqueue(DeliveryMessage(retried.id, retried.round + 1, retried.correlation_id))
        return retried
