"""What a provider is asked to send and what it answers: the contract every channel keeps."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from notification_service.domain.model import Channel, FailureKind


@dataclass(frozen=True)
class OutgoingMessage:
    notification_id: str
    channel: Channel
    address: str
    body: str
    subject: str | None
    correlation_id: str
    html: str | None = None  # email: an HTML alternative to `body`


@dataclass(frozen=True)
class Delivered:
    provider_message_id: str


@dataclass(frozen=True)
class DeliveryFailed:
    """Why a send failed. `configuration_error`: our side is wrong (credentials, sender): the
    notification may succeed later or elsewhere, but an operator must look."""

    kind: FailureKind
    reason: str
    retry_after_seconds: int | None = None
    configuration_error: bool = False

    @classmethod
    def transient(cls, reason: str, retry_after_seconds: int | None = None) -> DeliveryFailed:
        return cls(FailureKind.TRANSIENT, reason, retry_after_seconds)

    @classmethod
    def misconfigured(cls, reason: str) -> DeliveryFailed:
        return cls(FailureKind.TRANSIENT, reason, configuration_error=True)

    @classmethod
    def permanent(cls, reason: str) -> DeliveryFailed:
        return cls(FailureKind.PERMANENT, reason)


@dataclass(frozen=True)
class DeliveryUncertain:
    """A send began and its result was never recorded (the worker died): it may have been delivered."""

    reason: str


# Called by a provider right before the step it cannot take back (the HTTP request, the SMTP
# transaction after connecting and logging in): the dispatch writes the send's intent there. Raises
# when the send must not happen (the worker lost its lease).
Commit = Callable[[], Awaitable[None]]


async def no_commit() -> None:
    return None


ProviderAnswer = Delivered | DeliveryFailed  # what a provider says about a send it made
SendOutcome = ProviderAnswer | DeliveryUncertain  # what a round knows about a channel's send
