"""The roles the service layer depends on. Adapters implement them for AWS, Redis and providers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from notification_service.domain.delivery import OutgoingMessage, SendOutcome
from notification_service.domain.model import Attempt, Channel, Notification, Status
from notification_service.domain.sweep import SweepCandidate


@dataclass(frozen=True)
class DeliveryMessage:
    """What travels on the delivery queue: which round of which notification to run."""

    notification_id: str
    round: int
    correlation_id: str
    receive_count: int = 1  # SQS's ApproximateReceiveCount: above 1, this copy came back after a failure


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
    ) -> bool:
        """Finish a record that nothing else will finish (`failed` or `cancelled`, with the reason),
        only while it is still `expected` at `expected_round`. False when it had moved on."""
        ...


class NotificationRepository(RecordCloser, Protocol):
    def add(self, notification: Notification) -> None:
        """Raises NotificationAlreadyExists when the id is taken."""
        ...

    def get(self, notification_id: str) -> Notification:
        """Raises NotificationNotFound."""
        ...

    def claim_round(
        self, notification_id: str, round_no: int, owner: str, now: datetime, lease_until: datetime
    ) -> Notification:
        """Move the record to `processing` round `round_no` under a lease. Raises ClaimRejected
        (with the current record) or NotificationNotFound."""
        ...

    def complete_round(
        self, notification_id: str, round_no: int, owner: str, result: RoundResult, now: datetime
    ) -> Notification:
        """Append the round's attempts and set the new status, only while `owner` holds the lease.
        Raises LeaseLost."""
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


class DeliveryQueue(Protocol):
    def enqueue(self, message: DeliveryMessage, delay_seconds: int = 0) -> None: ...

    def check(self) -> None: ...


class Provider(Protocol):
    """One channel. `send` never raises for delivery problems: it classifies them."""

    channel: Channel

    async def send(self, message: OutgoingMessage) -> SendOutcome: ...


class HealthCheck(Protocol):
    def check(self) -> None: ...


class DeliveryLedger(Protocol):
    """Which channels already delivered a notification, written right after the provider accepted it
    and before the round's result is stored: a round that runs again (its result write failed, its
    worker died) never sends again on such a channel."""

    def delivered(self, notification_id: str, channel: Channel) -> str | None:
        """The provider message id of an earlier delivery, if any."""
        ...

    def record(self, notification_id: str, channel: Channel, provider_message_id: str) -> None: ...


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
