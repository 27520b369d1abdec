"""Rate limits: what they are, what a decision says, and the HTTP headers that carry it (no I/O).

Two limits guard the API:

- per API key, a token bucket: PER_KEY_BURST tokens at most, refilled at PER_KEY_PER_SECOND; each
  recipient of a call costs one token (a call costs at least one);
- per recipient, a sliding one-hour window: at most PER_RECIPIENT_PER_HOUR calls to one address
  (counted per normalized address, so addresses that differ only by case or surrounding blanks count
  together).

A field at 0 or less turns its limit off (the bucket needs both its rate and its burst). A decision
describes the per-key bucket when the call is allowed and the limit that refused it otherwise; its
headers follow draft-ietf-httpapi-ratelimit-headers (RateLimit-Limit / -Remaining / -Reset, integer
seconds) plus Retry-After on a refusal. Neither API keys nor addresses appear in cache keys: only
their SHA-256.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

RefusedBy = Literal["api_key", "recipient"]

WINDOW_SECONDS = 3600  # the per-recipient window


@dataclass(frozen=True)
class RateLimits:
    per_key_per_second: float
    per_key_burst: int
    per_recipient_per_hour: int

    @property
    def per_key_on(self) -> bool:
        return self.per_key_per_second > 0 and self.per_key_burst > 0

    @property
    def per_recipient_on(self) -> bool:
        return self.per_recipient_per_hour > 0


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after_seconds: int
    refused_by: RefusedBy | None

    @classmethod
    def unlimited(cls) -> RateDecision:
        """Allowed with no per-key limit to describe (the bucket is off): no headers."""
        return cls(True, 0, 0, 0, 0, None)

    @classmethod
    def allow(cls, limit: int, remaining: int, reset_ms: int) -> RateDecision:
        return cls(True, limit, max(0, remaining), ceil_seconds(reset_ms), 0, None)

    @classmethod
    def refuse(
        cls, refused_by: RefusedBy, limit: int, remaining: int, reset_ms: int, retry_after_ms: int
    ) -> RateDecision:
        """Refused: retry when the refusing limit lets this call through (1 s at least); it resets
        then or later (the bucket is full again, the window has room again)."""
        wait = max(1, ceil_seconds(retry_after_ms))
        return cls(False, limit, max(0, remaining), max(wait, ceil_seconds(reset_ms)), wait, refused_by)

    def headers(self) -> dict[str, str]:
        if self.allowed and self.limit <= 0:
            return {}
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_seconds)
        return headers


def ceil_seconds(milliseconds: int) -> int:
    return max(0, -(-milliseconds // 1000))


def normalized_address(address: str) -> str:
    return address.strip().lower()


def recipient_key(address: str) -> str:
    """The SHA-256 (hex) of the normalized address: what the per-recipient window is keyed by."""
    return hashlib.sha256(normalized_address(address).encode()).hexdigest()


def api_key_id(api_key: str) -> str:
    """The SHA-256 (hex) of the API key as given (keys are case-sensitive): the bucket's key."""
    return hashlib.sha256(api_key.encode()).hexdigest()
