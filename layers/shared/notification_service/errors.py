"""Errors the service layer raises and the entrypoints translate (to HTTP answers or batch failures)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from notification_service.domain.rate_limit import RateDecision


class NotificationNotFound(LookupError):
    def __init__(self, notification_id: str) -> None:
        super().__init__(f"notification {notification_id} not found")
        self.notification_id = notification_id


class DependencyUnavailable(RuntimeError):
    """A backing service (DynamoDB, SQS, Redis) did not answer; the caller may try again later."""

    def __init__(self, dependency: str, detail: str, retry_after_seconds: int = 1) -> None:
        super().__init__(f"{dependency} unavailable: {detail}")
        self.dependency = dependency
        self.detail = detail
        self.retry_after_seconds = retry_after_seconds


class InvalidIdempotencyKey(ValueError):
    """The Idempotency-Key header is empty or longer than allowed."""


class IdempotencyKeyReused(ValueError):
    """The Idempotency-Key was used before with a different request body."""


class IdempotencyKeyInFlight(RuntimeError):
    """The first request with this Idempotency-Key has not finished yet."""


class ConfigurationError(RuntimeError):
    """A setting is missing or invalid; the message names the environment variable."""


class InvalidCursor(ValueError):
    """A list cursor that this service did not hand out."""


class RateLimited(RuntimeError):
    """A rate limit refuses the request; `decision` says which, and when to come back."""

    def __init__(self, decision: RateDecision) -> None:
        which = "this API key" if decision.refused_by == "api_key" else "this recipient"
        super().__init__(f"too many notifications for {which}; retry after {decision.retry_after_seconds} s")
        self.decision = decision


class InvalidField(ValueError):
    """A field that parsed but cannot be honoured (answered 422 naming `field`)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
