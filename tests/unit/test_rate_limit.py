"""Rate limits, decisions and their headers (the pure part; the Redis limiter is in tests/integration)."""

from __future__ import annotations

import hashlib

import pytest
from notification_service.domain.rate_limit import (
    RateDecision,
    RateLimits,
    api_key_id,
    ceil_seconds,
    recipient_key,
)


def test_an_allowed_decision_describes_the_bucket_without_retry_after() -> None:
    decision = RateDecision.allow(limit=5, remaining=3, reset_ms=2_001)
    assert decision == RateDecision(True, 5, 3, 3, 0, None)
    assert decision.headers() == {
        "RateLimit-Limit": "5",
        "RateLimit-Remaining": "3",
        "RateLimit-Reset": "3",
    }


def test_a_refusal_adds_retry_after_in_whole_seconds_rounded_up() -> None:
    decision = RateDecision.refuse("api_key", limit=5, remaining=0, reset_ms=4_500, retry_after_ms=1_200)
    assert decision == RateDecision(False, 5, 0, 5, 2, "api_key")
    assert decision.headers() == {
        "RateLimit-Limit": "5",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "5",
        "Retry-After": "2",
    }


def test_a_refusal_waits_a_second_at_least_and_resets_no_sooner_than_the_retry() -> None:
    soon = RateDecision.refuse("recipient", limit=3, remaining=0, reset_ms=1, retry_after_ms=1)
    assert (soon.retry_after_seconds, soon.reset_seconds) == (1, 1)
    zero = RateDecision.refuse("recipient", limit=3, remaining=-2, reset_ms=0, retry_after_ms=0)
    assert (zero.retry_after_seconds, zero.reset_seconds, zero.remaining) == (1, 1, 0)
    window = RateDecision.refuse(
        "recipient", limit=3, remaining=0, reset_ms=3_599_001, retry_after_ms=3_599_001
    )
    assert window.headers()["Retry-After"] == "3600"
    assert window.refused_by == "recipient"


def test_an_allowed_call_never_reports_negative_remaining() -> None:
    # a call costing more than the burst leaves the bucket in debt
    assert RateDecision.allow(limit=5, remaining=-7, reset_ms=12_000).remaining == 0


def test_no_limit_to_describe_means_no_headers() -> None:
    decision = RateDecision.unlimited()
    assert decision.allowed
    assert decision.refused_by is None
    assert decision.headers() == {}


@pytest.mark.parametrize(("ms", "seconds"), [(0, 0), (1, 1), (999, 1), (1_000, 1), (1_001, 2), (-5, 0)])
def test_ceil_seconds(ms: int, seconds: int) -> None:
    assert ceil_seconds(ms) == seconds


def test_recipient_key_is_the_sha256_of_the_normalized_address() -> None:
    key = recipient_key("  User@Example.COM\n")
    assert key == hashlib.sha256(b"user@example.com").hexdigest()
    assert key == recipient_key("user@example.com")
    assert key != recipient_key("other@example.com")
    assert "example" not in key
    assert len(key) == 64


def test_api_keys_are_hashed_as_given() -> None:
    assert api_key_id("Key-1") == hashlib.sha256(b"Key-1").hexdigest()
    assert api_key_id("Key-1") != api_key_id("key-1")


@pytest.mark.parametrize(
    ("limits", "per_key", "per_recipient"),
    [
        (RateLimits(10, 20, 5), True, True),
        (RateLimits(0.5, 1, 0), True, False),
        (RateLimits(0, 20, 5), False, True),
        (RateLimits(10, 0, -1), False, False),
        (RateLimits(-1, -1, 1), False, True),
    ],
)
def test_a_field_at_zero_or_less_turns_its_limit_off(
    limits: RateLimits, per_key: bool, per_recipient: bool
) -> None:
    assert limits.per_key_on is per_key
    assert limits.per_recipient_on is per_recipient
