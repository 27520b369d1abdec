"""In-memory fakes of the ports, for unit tests. They keep the same conditions as the real adapters
(the integration tests prove the adapters; these let the domain be tested without a network)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from notification_service.domain.delivery import (
    Commit,
    Delivered,
    DeliveryFailed,
    OutgoingMessage,
    ProviderAnswer,
    no_commit,
)
from notification_service.domain.lifecycle import CANCELLABLE, RETRYABLE, TransitionRefused
from notification_service.domain.model import (
    CLAIMABLE_STATUSES,
    Attempt,
    Channel,
    Notification,
    SendInProgress,
    Status,
    WebhookAttempt,
)
from notification_service.domain.recipient import Recipient
from notification_service.domain.sweep import SweepCandidate, due_at
from notification_service.domain.template import Template, TemplateNotFound, TemplatePart
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
    OwedWebhook,
    Page,
    RoundResult,
    StatusCounts,
    WebhookMessage,
)
from notification_service.settings import Settings


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeRepository:
    def __init__(self, sweep_grace: timedelta = timedelta(seconds=60)) -> None:
        self.items: dict[str, Notification] = {}
        self.sweep_due: dict[str, datetime] = {}  # the sweep index: records not finished
        self.sweep_grace = sweep_grace
        self.sends_begun: list[tuple[str, int, Channel]] = []
        self.unavailable = False
        self.writes = 0
        self.webhooks_due: dict[str, tuple[str, datetime]] = {}  # owed webhooks: id -> (status, due)

    def _store(self, notification: Notification) -> None:
        self.items[notification.id] = notification
        due = due_at(notification, self.sweep_grace)
        if due is None:
            self.sweep_due.pop(notification.id, None)
        else:
            self.sweep_due[notification.id] = due
        self.writes += 1

    def add(self, notification: Notification) -> None:
        self._available()
        if notification.id in self.items:
            raise NotificationAlreadyExists(notification.id)
        self._store(notification)

    def add_many(self, notifications: Sequence[Notification]) -> set[str]:
        if self.unavailable:
            return {n.id for n in notifications}
        for notification in notifications:
            self.add(notification)
        return set()

    def get(self, notification_id: str) -> Notification:
        self._available()
        try:
            return self.items[notification_id]
        except KeyError:
            raise NotificationNotFound(notification_id) from None

    def get_owned(self, notification_id: str, owner: str) -> Notification:
        found = self.get(notification_id)
        if found.owner != owner:
            raise NotificationNotFound(notification_id)
        return found

    def claim_round(
        self,
        notification_id: str,
        round_no: int,
        owner: str,
        now: datetime,
        lease_until: datetime,
        intent_token: str | None = None,
    ) -> Notification:
        current = self.get(notification_id)
        fresh = (
            current.status in CLAIMABLE_STATUSES
            and current.round == round_no - 1
            and (
                current.status is not Status.SCHEDULED
                or (current.send_at is not None and current.send_at <= now)
            )
        )
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
        if intent_token is not None and claimed.sending is None:
            claimed = claimed.with_changes(sending=SendInProgress(round_no, None, now, intent_token))
        self._store(claimed)
        return claimed

    def _leased(self, notification_id: str, round_no: int, owner: str) -> Notification:
        current = self.get(notification_id)
        if not (
            current.status is Status.PROCESSING and current.round == round_no and current.lease_owner == owner
        ):
            raise LeaseLost(notification_id)
        return current

    def begin_send(
        self,
        notification_id: str,
        round_no: int,
        owner: str,
        channel: Channel,
        attempts: Sequence[Attempt],
        now: datetime,
    ) -> None:
        current = self._leased(notification_id, round_no, owner)
        self.sends_begun.append((notification_id, round_no, channel))
        self._store(
            current.with_changes(
                sending=SendInProgress(round_no, channel, now),
                attempts=current.attempts + tuple(attempts),
                updated_at=now,
            )
        )

    def release_round(
        self, notification_id: str, round_no: int, owner: str, attempts: Sequence[Attempt], now: datetime
    ) -> None:
        current = self._leased(notification_id, round_no, owner)
        self._store(
            current.with_changes(
                attempts=current.attempts + tuple(attempts), lease_until=now, sending=None, updated_at=now
            )
        )

    def complete_round(
        self, notification_id: str, round_no: int, owner: str, result: RoundResult, now: datetime
    ) -> Notification:
        current = self._leased(notification_id, round_no, owner)
        done = current.with_changes(
            status=result.status,
            attempts=current.attempts + tuple(result.attempts),
            channel_used=result.channel_used or current.channel_used,
            provider_message_id=result.provider_message_id or current.provider_message_id,
            next_attempt_at=result.next_attempt_at,
            lease_owner=None,
            lease_until=None,
            updated_at=now,
            status_reason=result.reason,
            sweeps=0,
            sending=None,
        )
        self._store(done)
        if result.webhook_due is not None:
            self.webhooks_due[notification_id] = (result.status.value, result.webhook_due)
        return done

    def close(
        self,
        notification_id: str,
        *,
        expected: Status,
        expected_round: int,
        status: Status,
        reason: str,
        now: datetime,
        webhook_due: datetime | None = None,
    ) -> bool:
        current = self.get(notification_id)
        if current.status is not expected or current.round != expected_round:
            return False
        if webhook_due is not None:
            self.webhooks_due[notification_id] = (status.value, webhook_due)
        self._store(
            current.with_changes(
                status=status,
                status_reason=reason,
                updated_at=now,
                lease_owner=None,
                lease_until=None,
                next_attempt_at=None,
            )
        )
        return True

    def list_page(self, query: ListQuery) -> Page:
        self._available()
        matching = sorted(
            (
                n
                for n in self.items.values()
                if (query.status is None or n.status is query.status) and _matches(n, query)
            ),
            key=lambda n: (n.created_at, n.id),
            reverse=True,
        )
        if query.cursor is not None:
            if query.cursor not in {n.id for n in matching}:
                raise InvalidCursor("unknown cursor")
            after = [n.id for n in matching].index(query.cursor) + 1
            matching = matching[after:]
        page = matching[: query.limit]
        return Page(page, page[-1].id if len(matching) > query.limit else None)

    def count_by_status(self, query: ListQuery) -> StatusCounts:
        self._available()
        matching = [n for n in self.items.values() if _matches(n, query)]
        return StatusCounts({s: sum(1 for n in matching if n.status is s) for s in Status})

    def cancel(
        self,
        notification_id: str,
        owner: str,
        reason: str,
        now: datetime,
        webhook_due: datetime | None = None,
    ) -> Notification:
        current = self.get_owned(notification_id, owner)
        if current.status not in CANCELLABLE:
            raise TransitionRefused("cancel", notification_id, current.status)
        cancelled = current.with_changes(
            status=Status.CANCELLED, status_reason=reason, updated_at=now, next_attempt_at=None
        )
        self._store(cancelled)
        if webhook_due is not None:
            self.webhooks_due[notification_id] = (Status.CANCELLED.value, webhook_due)
        return cancelled

    def retry(self, notification_id: str, owner: str, now: datetime, sweep_due: datetime) -> Notification:
        current = self.get_owned(notification_id, owner)
        if current.status not in RETRYABLE:
            raise TransitionRefused("retry", notification_id, current.status)
        retried = current.with_changes(
            status=Status.RETRYING,
            status_reason=None,
            updated_at=now,
            next_attempt_at=now,
            rounds_before_retry=current.round,
            sweeps=0,
        )
        self._store(retried)
        self.sweep_due[notification_id] = sweep_due
        return retried

    def stuck(self, status: Status, now: datetime, limit: int) -> list[SweepCandidate]:
        self._available()
        due = sorted(
            (when, nid)
            for nid, when in self.sweep_due.items()
            if when <= now and self.items[nid].status is status
        )
        return [
            SweepCandidate(n.id, n.status, n.round, n.correlation_id, n.sweeps, n.callback_url is not None)
            for n in (self.items[nid] for _, nid in due[:limit])
        ]

    def record_receipt(
        self,
        notification_id: str,
        provider_message_id: str,
        status: Status,
        reason: str | None,
        now: datetime,
        webhook_due: datetime | None,
    ) -> bool:
        current = self.get(notification_id)
        if (current.status, current.channel_used, current.provider_message_id) != (
            Status.SENT,
            Channel.SMS,
            provider_message_id,
        ):
            return False
        self._store(current.with_changes(status=status, status_reason=reason, updated_at=now))
        if webhook_due is not None:
            self.webhooks_due[notification_id] = (status.value, webhook_due)
        return True

    def webhooks_owed(self, now: datetime, limit: int) -> list[OwedWebhook]:
        self._available()
        due = sorted((when, nid, status) for nid, (status, when) in self.webhooks_due.items() if when <= now)
        return [OwedWebhook(nid, status, self.items[nid].correlation_id) for _, nid, status in due[:limit]]

    def postpone_webhook(self, owed: OwedWebhook, due: datetime) -> bool:
        if self.webhooks_due.get(owed.notification_id, ("", due))[0] != owed.status:
            return False
        self.webhooks_due[owed.notification_id] = (owed.status, due)
        return True

    def record_webhook(
        self, notification_id: str, attempt: WebhookAttempt, next_due: datetime | None
    ) -> None:
        self._available()
        current = self.get(notification_id)
        self.items[notification_id] = current.with_changes(webhooks=(*current.webhooks, attempt))
        owed = self.webhooks_due.get(notification_id)
        if owed is not None and owed[0] == attempt.status:
            if next_due is None:
                del self.webhooks_due[notification_id]
            else:
                self.webhooks_due[notification_id] = (attempt.status, next_due)

    def mark_swept(self, candidate: SweepCandidate, now: datetime, next_due: datetime) -> bool:
        current = self.get(candidate.id)
        if (current.status, current.round, current.sweeps) != (
            candidate.status,
            candidate.round,
            candidate.sweeps,
        ):
            return False
        self._store(current.with_changes(sweeps=current.sweeps + 1, updated_at=now))
        self.sweep_due[candidate.id] = next_due
        return True

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

    def enqueue_many(self, messages: Sequence[tuple[DeliveryMessage, int]]) -> set[str]:
        if self.unavailable:
            return {m.notification_id for m, _ in messages}
        self.sent.extend(messages)
        return set()

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
    script: list[ProviderAnswer | Exception] = field(default_factory=list)
    sent: list[OutgoingMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def send(self, message: OutgoingMessage, commit: Commit = no_commit) -> ProviderAnswer:
        await commit()
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


class FakeLedger:
    """DeliveryLedger in a dict; `unavailable` makes every call fail as a Redis outage would."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, int, Channel], ProviderAnswer] = {}
        self.rounds: dict[tuple[str, int], set[str]] = {}
        self.unavailable = False
        self.calls: list[str] = []

    def outcome(self, notification_id: str, round_no: int, channel: Channel) -> ProviderAnswer | None:
        self.calls.append("outcome")
        self._available()
        return self.entries.get((notification_id, round_no, channel))

    def record(self, notification_id: str, round_no: int, channel: Channel, answer: ProviderAnswer) -> None:
        self.calls.append("record")
        self._available()
        self.entries[(notification_id, round_no, channel)] = answer

    def mark_claim(self, notification_id: str, round_no: int, token: str) -> None:
        self.calls.append("mark_claim")
        self._available()
        self.rounds.setdefault((notification_id, round_no), set()).add(f"claim:{token}")

    def mark_started(self, notification_id: str, round_no: int, channel: Channel) -> None:
        self.calls.append("mark_started")
        self._available()
        self.rounds.setdefault((notification_id, round_no), set()).add(f"started:{channel.value}")

    def started(self, notification_id: str, round_no: int, token: str, channel: Channel) -> bool | None:
        self.calls.append("started")
        self._available()
        fields = self.rounds.get((notification_id, round_no), set())
        if f"claim:{token}" not in fields:
            return None
        return f"started:{channel.value}" in fields

    def forget(self) -> None:
        """As a flushed cache: nothing recorded any more."""
        self.entries.clear()
        self.rounds.clear()

    def _available(self) -> None:
        if self.unavailable:
            raise DependencyUnavailable("redis", "fake outage")


class FakeTemplateStore:
    def __init__(self) -> None:
        self.templates: dict[str, Template] = {}

    def put(self, name: str, parts: dict[Channel, TemplatePart], now: datetime) -> Template:
        before = self.templates.get(name)
        stored = Template(
            name,
            dict(parts),
            (before.version if before else 0) + 1,
            before.created_at if before else now,
            now,
        )
        self.templates[name] = stored
        return stored

    def get(self, name: str) -> Template:
        if name not in self.templates:
            raise TemplateNotFound(name)
        return self.templates[name]

    def delete(self, name: str) -> None:
        if self.templates.pop(name, None) is None:
            raise TemplateNotFound(name)

    def list(self) -> list[Template]:
        return [self.templates[name] for name in sorted(self.templates)]


class ApiFakes:
    """What stands behind ApiFunction in its unit tests (installed by the `api_fakes` fixture)."""

    def __init__(self) -> None:
        self.repository = FakeRepository()
        self.queue = FakeQueue()
        self.idempotency = FakeIdempotency()
        self.templates = FakeTemplateStore()
        self.clock = FakeClock()
        self.settings = Settings(table_name="t", queue_url="q", max_body_bytes=2048)


class FakeWebhookQueue:
    """Records what was enqueued (with the delay); `unavailable` makes enqueue fail."""

    def __init__(self) -> None:
        self.sent: list[tuple[WebhookMessage, int]] = []
        self.unavailable = False

    def enqueue(self, message: WebhookMessage, delay_seconds: int = 0) -> None:
        if self.unavailable:
            raise DependencyUnavailable("sqs", "webhook queue down")
        self.sent.append((message, delay_seconds))


def _matches(n: Notification, query: ListQuery) -> bool:
    """The query's filters but status: owner, channel, time range, search."""
    return (
        n.owner == query.owner
        and (query.channel is None or query.channel in n.channels)
        and (query.created_after is None or n.created_at >= query.created_after)
        and (query.created_before is None or n.created_at < query.created_before)
        and (not query.search or query.search in n.id or query.search in n.correlation_id)
    )


def email_notification(at: datetime, nid: str = "n-1", **changes: Any) -> Notification:
    """A fresh email-only notification to user@example.com created `at` (correlation id corr-<id>)."""
    return Notification(
        id=nid,
        recipient=Recipient(email="user@example.com"),
        message="hi",
        channels=(Channel.EMAIL,),
        correlation_id=f"corr-{nid}",
        created_at=at,
        updated_at=at,
    ).with_changes(**changes)
