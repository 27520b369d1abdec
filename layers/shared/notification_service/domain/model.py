"""The notification record, its attempts and its statuses."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from notification_service.domain.recipient import Recipient


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    TELEGRAM = "telegram"


DEFAULT_CHANNELS: tuple[Channel, ...] = (Channel.EMAIL, Channel.SMS, Channel.TELEGRAM)


class Status(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its send_at
    PENDING = "pending"
    PROCESSING = "processing"
    SENT = "sent"
    PARTIALLY_SENT = "partially_sent"  # routing "all": some listed channels delivered, not all
    RETRYING = "retrying"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # After `sent`, the provider's receipt: the carrier's final word (domain/receipts.py)
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {
        Status.SENT,
        Status.PARTIALLY_SENT,
        Status.FAILED,
        Status.CANCELLED,
        Status.DELIVERED,
        Status.UNDELIVERED,
    }
)


class Routing(StrEnum):
    FALLBACK = "fallback"  # the channels in order, the first success ends it
    ALL = "all"  # every listed channel, each with its own attempts and outcome


CLAIMABLE_STATUSES = frozenset({Status.PENDING, Status.RETRYING, Status.SCHEDULED})  # scheduled: once due


class Outcome(StrEnum):
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    # The worker stopped while this channel's send was in flight and no result was recorded: the
    # provider may have delivered it. Not sent again (at most once); the round ends here.
    UNCERTAIN = "uncertain"


class FailureKind(StrEnum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Attempt:
    """One try of one channel in one round."""

    round: int
    channel: Channel
    outcome: Outcome
    started_at: datetime
    finished_at: datetime
    error: str | None = None
    failure_kind: FailureKind | None = None
    provider_message_id: str | None = None
    retry_after_seconds: int | None = None  # the provider asked to wait this long (e.g. HTTP 429)


@dataclass(frozen=True)
class WebhookAttempt:
    """One POST of one event to the notification's callback_url (domain/webhook.py signs it)."""

    event_id: str
    status: str  # the status the event announces
    attempt: int
    at: datetime
    delivered: bool
    status_code: int | None = None
    error: str | None = None
    duration_ms: float = 0
    final: bool = False  # no further attempt for this event (delivered, refused, or out of attempts)


@dataclass(frozen=True)
class Content:
    """What one channel sends."""

    text: str
    subject: str | None = None
    html: str | None = None


@dataclass(frozen=True)
class SendInProgress:
    """Written before a provider is called (write-ahead): the round that runs again after its worker
    died knows which send may have happened. Written by the claim itself (`channel` None: the round's
    first send, whichever channel that is; `token` names that claim in the delivery ledger, which says
    whether the send started), or right before a later send (its channel)."""

    round: int
    channel: Channel | None
    started_at: datetime
    token: str | None = None


@dataclass(frozen=True)
class Notification:
    id: str
    recipient: Recipient
    message: str
    channels: tuple[Channel, ...]
    correlation_id: str
    created_at: datetime
    updated_at: datetime
    status: Status = Status.PENDING
    subject: str | None = None
    metadata: dict[str, Any] | None = None
    round: int = 0
    attempts: tuple[Attempt, ...] = field(default_factory=tuple)
    channel_used: Channel | None = None
    provider_message_id: str | None = None
    next_attempt_at: datetime | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    request_hash: str | None = None  # accepted under an Idempotency-Key: the hash of that request
    status_reason: str | None = None  # why it ended `failed` or `cancelled`, in words
    sweeps: int = 0  # times the sweeper re-enqueued it without the record moving on
    sending: SendInProgress | None = None
    # Rounds before the last manual retry: a retried notification gets MAX_RETRY_ATTEMPTS fresh rounds.
    rounds_before_retry: int = 0
    send_at: datetime | None = None  # scheduled: not delivered before this time
    routing: Routing = Routing.FALLBACK
    # Made from a template: each channel's own rendered content (else `message`/`subject` for all).
    contents: dict[Channel, Content] | None = None
    template: str | None = None
    template_version: int | None = None
    owner: str = "anonymous"  # the API key (its name) that created it; see domain/api_keys.py
    callback_url: str | None = None  # told of every terminal status by a signed webhook
    webhooks: tuple[WebhookAttempt, ...] = field(default_factory=tuple)

    def permanently_failed_channels(self) -> frozenset[Channel]:
        """Channels that said "this will never work" in an earlier round (since the last manual retry):
        not tried again."""
        return frozenset(
            a.channel
            for a in self.attempts
            if a.failure_kind is FailureKind.PERMANENT and a.round > self.rounds_before_retry
        )

    def content_for(self, channel: Channel) -> Content | None:
        """What `channel` sends; None when the notification's template has no part for it."""
        if self.contents is not None:
            return self.contents.get(channel)
        return Content(self.message, self.subject)

    def delivered_channels(self) -> frozenset[Channel]:
        """Channels that delivered (or may have: uncertain) in any round: never sent again."""
        return frozenset(a.channel for a in self.attempts if a.outcome in (Outcome.SENT, Outcome.UNCERTAIN))

    def with_changes(self, **changes: Any) -> Notification:
        return replace(self, **changes)
