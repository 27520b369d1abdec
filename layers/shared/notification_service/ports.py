"""The roles the service layer depends on. Adapters implement them for AWS, Redis and providers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from notification_service.domain.delivery import Commit, OutgoingMessage, ProviderAnswer, no_commit
from notification_service.domain.model import Attempt, Channel, Notification, Status, WebhookAttempt
from notification_service.domain.rate_limit import RateDecision
from notification_service.domain.sweep import SweepCandidate
from notification_service.domain.template import Template, TemplatePart


@dataclass(frozen=True)
class DeliveryMessage:
    """What travels on the delivery queue: which round of which notification to run."""

    notification_id: str
    round: int
    correlation_id: str
    receive_count: int = 1  # SQS's ApproximateReceiveCount: above 1, this copy came back after a failure

    def with_receive_count(self, count: int) -> DeliveryMessage:
        return DeliveryMessage(self.notification_id, self.round, self.correlation_id, count)


@dataclass(frozen=True)
class WebhookMessage:
    """What travels on the webhook queue: tell `notification_id`'s callback_url it reached `status`."""

    notification_id: str
    status: str
    attempt: int
    correlation_id: str


@dataclass(frozen=True)
class OwedWebhook:
    """A terminal record still owing its callback_url the event for `status`."""

    notification_id: str
    status: str
    correlation_id: str


class ClaimRejected(Exception):
    """The conditional claim did not hold; `current` is the record as it stands."""

    def __init__(self, current: Notification) -> None:
        super().__init__(f"claim rejected: {current.id} is {current.status} at round {current.round}")
        self.current = current


class NotificationAlreadyExists(Exception):
    """A record with this id is stored already (an Idempotency-Key names one notification)."""

    def __init__(self, notification_id: str) -> None:
        super().__init__(f"notification {notification_id} exists")
        self.notification_id = notification_id


class LeaseLost(Exception):
    """The round's result could not be written because this worker no longer holds the lease."""


@dataclass(frozen=True)
class RoundResult:
    status: Status
    attempts: Sequence[Attempt]
    channel_used: Channel | None = None
    provider_message_id: str | None = None
    next_attempt_at: datetime | None = None
    reason: str | None = None  # why it failed, for a `failed` result
    webhook_due: datetime | None = None  # terminal, with a callback_url: its webhook is owed by then


class RecordCloser(Protocol):
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
        """Finish a record that nothing else will finish (`failed` or `cancelled`, with the reason),
        only while it is still `expected` at `expected_round`. False when it had moved on. With
        `webhook_due`, the record owes its callback_url the event by then."""
        ...


@dataclass(frozen=True)
class ListQuery:
    owner: str  # the API key's name: only its notifications are listed
    status: Status | None = None
    channel: Channel | None = None  # among the notification's channels
    limit: int = 50
    cursor: str | None = None  # opaque, from the previous page
    created_after: datetime | None = None  # created at or after
    created_before: datetime | None = None  # created before
    search: str | None = None  # a part of the id or of the correlation id (case-sensitive)

    @property
    def filtered(self) -> bool:
        """Whether items are dropped after they are read (the index's key cannot select them)."""
        return self.channel is not None or bool(self.search)


@dataclass(frozen=True)
class StatusCounts:
    counts: dict[Status, int]  # every status
    capped: bool = False  # some counts are lower bounds: counting stopped at the store's read limit


@dataclass(frozen=True)
class Page:
    items: list[Notification]
    next_cursor: str | None


class NotificationRepository(RecordCloser, Protocol):
    def add(self, notification: Notification) -> None:
        """Raises NotificationAlreadyExists when the id is taken."""
        ...

    def add_many(self, notifications: Sequence[Notification]) -> set[str]:
        """Store fresh notifications in batches; answer the ids that could not be stored."""
        ...

    def get(self, notification_id: str) -> Notification:
        """Raises NotificationNotFound."""
        ...

    def get_owned(self, notification_id: str, owner: str) -> Notification:
        """`get`, but another owner's notification raises NotificationNotFound too."""
        ...

    def record_receipt(
        self,
        notification_id: str,
        provider_message_id: str,
        status: Status,
        reason: str | None,
        now: datetime,
        webhook_due: datetime | None,
    ) -> bool:
        """Move a `sent` sms notification, as that provider message, to `status` (a receipt's);
        False when it is not that (any more)."""
        ...

    def claim_round(
        self,
        notification_id: str,
        round_no: int,
        owner: str,
        now: datetime,
        lease_until: datetime,
        intent_token: str | None = None,
    ) -> Notification:
        """Move the record to `processing` round `round_no` under a lease; with `intent_token`, also
        write the intent of the round's first send (SendInProgress with no channel) unless one is
        there. Raises ClaimRejected (with the current record) or NotificationNotFound."""
        ...

    def begin_send(
        self,
        notification_id: str,
        round_no: int,
        owner: str,
        channel: Channel,
        attempts: Sequence[Attempt],
        now: datetime,
    ) -> None:
        """Before a provider is called: record that `channel` is being sent in this round (and the
        round's attempts made since the last write), only while `owner` holds the lease. Raises
        LeaseLost: then the send must not happen."""
        ...

    def release_round(
        self, notification_id: str, round_no: int, owner: str, attempts: Sequence[Attempt], now: datetime
    ) -> None:
        """Give the round back unfinished (out of time): keep its attempts so far and end the lease
        now, so that the next message for it (or the sweeper's) claims it at once. Raises LeaseLost."""
        ...

    def complete_round(
        self, notification_id: str, round_no: int, owner: str, result: RoundResult, now: datetime
    ) -> Notification:
        """Append the round's attempts not yet written and set the new status, only while `owner`
        holds the lease. Raises LeaseLost."""
        ...

    def list_page(self, query: ListQuery) -> Page:
        """Newest first, from an index (never a scan). Raises InvalidCursor."""
        ...

    def count_by_status(self, query: ListQuery) -> StatusCounts:
        """How many of the owner's notifications match the query's filters, for every status
        (the query's own status, limit and cursor are ignored)."""
        ...

    def cancel(
        self,
        notification_id: str,
        owner: str,
        reason: str,
        now: datetime,
        webhook_due: datetime | None = None,
    ) -> Notification:
        """Cancel it while it is cancellable. Raises TransitionRefused, or NotificationNotFound (also
        for another owner's)."""
        ...

    def retry(self, notification_id: str, owner: str, now: datetime, sweep_due: datetime) -> Notification:
        """Give a failed notification fresh rounds (status `retrying`, due now). Raises
        TransitionRefused, or NotificationNotFound (also for another owner's)."""
        ...

    def check(self) -> None:
        """Raise DependencyUnavailable when the store does not answer."""
        ...


class StuckRecords(RecordCloser, Protocol):
    """What the sweeper needs of the store: records not finished and overdue, newest repair last."""

    def stuck(self, status: Status, now: datetime, limit: int) -> list[SweepCandidate]: ...

    def mark_swept(self, candidate: SweepCandidate, now: datetime, next_due: datetime) -> bool:
        """Count one repair and push the record's due time back, only if it has not moved since it
        was read (two sweepers never both repair it). False when it had moved."""
        ...

    def webhooks_owed(self, now: datetime, limit: int) -> list[OwedWebhook]:
        """Finished records whose webhook is overdue."""
        ...

    def postpone_webhook(self, owed: OwedWebhook, due: datetime) -> bool:
        """Look at it again at `due`, unless it no longer owes that event (False)."""
        ...


class WebhookRecords(Protocol):
    """What the webhook worker needs of the store."""

    def get(self, notification_id: str) -> Notification: ...

    def record_webhook(
        self, notification_id: str, attempt: WebhookAttempt, next_due: datetime | None
    ) -> None:
        """Add the attempt to the history; `next_due` None: the event's last attempt (settled)."""
        ...


class DeliveryQueue(Protocol):
    def enqueue(self, message: DeliveryMessage, delay_seconds: int = 0) -> None: ...

    def enqueue_many(self, messages: Sequence[tuple[DeliveryMessage, int]]) -> set[str]:
        """Send in batches; answer the notification ids whose message could not be sent."""
        ...

    def check(self) -> None: ...


class WebhookQueue(Protocol):
    def enqueue(self, message: WebhookMessage, delay_seconds: int = 0) -> None:
        """Raises DependencyUnavailable."""
        ...


class Provider(Protocol):
    """One channel. `send` never raises for delivery problems: it classifies them."""

    channel: Channel

    async def send(self, message: OutgoingMessage, commit: Commit = no_commit) -> ProviderAnswer:
        """Calls `commit` right before the step it cannot take back; nothing goes out if it raises."""
        ...


@dataclass(frozen=True)
class LogLine:
    timestamp: datetime
    function: str  # the log group's last part
    level: str
    message: str
    fields: dict[str, Any]  # the line's own fields (round, channel, outcome, error...), not the boilerplate


class LogLines(Protocol):
    def for_notification(self, notification_id: str, correlation_id: str, since: datetime) -> list[LogLine]:
        """The functions' log lines carrying this notification's id and correlation id (a caller
        chooses its correlation ids: alone, it could name another caller's lines), oldest first."""
        ...


class HealthCheck(Protocol):
    def check(self) -> None: ...


class DeliveryLedger(Protocol):
    """What each provider answered, written right after it answered and before the round's result is
    stored. A round that runs again after its worker died reads it to learn the outcome of the send
    that was in flight, instead of calling it uncertain. A cache: when it has nothing, the outcome is
    uncertain and the channel is still not sent again."""

    def outcome(self, notification_id: str, round_no: int, channel: Channel) -> ProviderAnswer | None: ...

    def record(
        self, notification_id: str, round_no: int, channel: Channel, answer: ProviderAnswer
    ) -> None: ...

    def mark_claim(self, notification_id: str, round_no: int, token: str) -> None:
        """Before a claim that writes the round's first send's intent: this claim (`token`) exists."""
        ...

    def mark_started(self, notification_id: str, round_no: int, channel: Channel) -> None:
        """Right before the provider is called, in place of writing the intent to the store."""
        ...

    def started(self, notification_id: str, round_no: int, token: str, channel: Channel) -> bool | None:
        """Whether `channel`'s send of this round started; None when the ledger cannot say (it does
        not hold the claim `token` any more: lost or evicted since)."""
        ...


class ProviderHealth(Protocol):
    """Configuration problems a provider met (bad credentials, refused sender), shared by every
    function instance so that /ready can show them."""

    def report(self, channel: Channel, problem: str | None) -> None:
        """Record a problem, or None once the channel works again."""
        ...

    def problems(self) -> dict[Channel, str]: ...


class IdempotencyGuard(Protocol):
    """Runs `action` at most once per key; answers later calls with the first answer."""

    def run(
        self, key: str, payload: dict[str, Any], action: Callable[[], dict[str, Any]]
    ) -> tuple[dict[str, Any], bool]:
        """Return (answer, replayed). Raises IdempotencyKeyReused, IdempotencyKeyInFlight,
        DependencyUnavailable."""
        ...

    def register_lambda_context(self, context: Any) -> None:
        """Bind the in-flight marker's expiry to the current invocation's deadline."""
        ...

    def check(self) -> None: ...


class TemplateStore(Protocol):
    def put(self, name: str, parts: dict[Channel, TemplatePart], now: datetime) -> Template:
        """Create or replace; the version goes up by one."""
        ...

    def get(self, name: str) -> Template:
        """Raises TemplateNotFound."""
        ...

    def delete(self, name: str) -> None:
        """Raises TemplateNotFound."""
        ...

    def list(self) -> list[Template]:
        """By name."""
        ...


class Metrics(Protocol):
    """Counters and distributions the service keeps about itself."""

    def count(self, name: str, value: int = 1, **labels: str) -> None: ...

    def observe(self, name: str, value: float, **labels: str) -> None: ...


class MetricsExposition(Protocol):
    def exposition(self) -> str:
        """Every metric in the Prometheus text format. Raises DependencyUnavailable."""
        ...


class RateLimiter(Protocol):
    def acquire(
        self, api_key: str, recipients: Sequence[str], now_ms: int | None = None, *, cost: int | None = None
    ) -> RateDecision:
        """Count the call and allow it, or refuse it without counting. Raises DependencyUnavailable."""
        ...
