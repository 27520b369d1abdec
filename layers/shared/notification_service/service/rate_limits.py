"""Admitting a request under the rate limits (domain/rate_limit.py): each recipient address counts,
the caller's bucket pays `cost` tokens. A cache outage lets the request through, loudly: it must not
stop notifications."""

from __future__ import annotations

from collections.abc import Sequence

from aws_lambda_powertools import Logger

from notification_service.domain.rate_limit import RateDecision
from notification_service.domain.recipient import Recipient
from notification_service.errors import DependencyUnavailable, RateLimited
from notification_service.ports import RateLimiter

logger = Logger(child=True)


def admit(
    limiter: RateLimiter | None, caller: str, recipients: Sequence[Recipient], cost: int = 1
) -> RateDecision | None:
    """The allowing decision (None: no limits were checked); raises RateLimited when refused."""
    if limiter is None:
        return None
    addresses = [address for recipient in recipients for address in recipient.addresses()]
    try:
        decision = limiter.acquire(caller, addresses, cost=cost)
    except DependencyUnavailable as exc:
        logger.warning("rate limits not checked: the cache is unavailable", extra={"detail": exc.detail})
        return None
    if not decision.allowed:
        raise RateLimited(decision)
    return decision
