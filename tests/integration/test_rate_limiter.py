"""The API's rate limiter against the real Redis: the per-key token bucket, the per-recipient hourly
window, atomicity under concurrency and Redis down. Times are passed explicitly (no sleeps)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from notification_service.adapters.redis_idempotency import redis_client
from notification_service.adapters.redis_rate_limiter import BUCKET_TTL_MARGIN_MS, RedisRateLimiter
from notification_service.domain.rate_limit import RateDecision, RateLimits
from notification_service.errors import DependencyUnavailable

from infra.emulator import free_port

T0 = 1_700_000_000_000  # ms
HOUR = 3_600_000  # ms

Limiter = Callable[[RateLimits], RedisRateLimiter]


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    return redis_client(redis_url)


@pytest.fixture
def prefix(client: redis.Redis) -> Iterator[str]:
    """A prefix of this test's own; its keys are deleted afterwards."""
    mine = f"test-ratelimit-{uuid.uuid4().hex}"
    yield mine
    for key in client.scan_iter(match=f"{mine}:*", count=1000):
        client.delete(key)


@pytest.fixture
def limiter(client: redis.Redis, prefix: str) -> Limiter:
    return lambda limits: RedisRateLimiter(client, limits, prefix=prefix)


def test_a_burst_passes_then_the_key_is_refused_until_a_token_is_back(limiter: Limiter) -> None:
    limits = limiter(RateLimits(per_key_per_second=0.5, per_key_burst=5, per_recipient_per_hour=0))
    allowed = [limits.acquire("key-1", [f"user{n}@example.com"], now_ms=T0) for n in range(5)]
    assert [d.remaining for d in allowed] == [4, 3, 2, 1, 0]
    assert all(d.allowed and d.limit == 5 and d.retry_after_seconds == 0 for d in allowed)
    assert [d.reset_seconds for d in allowed] == [2, 4, 6, 8, 10]  # until full again, at 0.5 token/s

    refused = limits.acquire("key-1", ["user5@example.com"], now_ms=T0)
    assert refused == RateDecision(False, 5, 0, 10, 2, "api_key")  # one token takes 2 s at 0.5/s
    assert refused.headers() == {
        "RateLimit-Limit": "5",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "10",
        "Retry-After": "2",
    }
    # another key has its own bucket
    assert limits.acquire("key-2", ["user5@example.com"], now_ms=T0).allowed


def test_the_bucket_refills_with_time_up_to_its_burst(limiter: Limiter) -> None:
    limits = limiter(RateLimits(per_key_per_second=1, per_key_burst=5, per_recipient_per_hour=0))
    for _ in range(5):
        assert limits.acquire("key", ["a@example.com"], now_ms=T0).allowed
    # 1.5 s later: one whole token is back (and half of the next)
    assert not limits.acquire("key", ["a@example.com"], now_ms=T0 + 999).allowed
    assert limits.acquire("key", ["a@example.com"], now_ms=T0 + 1_500).allowed
    half_way = limits.acquire("key", ["a@example.com"], now_ms=T0 + 1_500)
    assert (half_way.allowed, half_way.retry_after_seconds) == (False, 1)  # 500 ms -> 1 s
    assert limits.acquire("key", ["a@example.com"], now_ms=T0 + 2_000).allowed
    # a long pause fills the bucket to its burst, no further
    later = T0 + 600_000
    passed = [limits.acquire("key", ["a@example.com"], now_ms=later) for _ in range(6)]
    assert [d.allowed for d in passed] == [True] * 5 + [False]
    assert passed[0].remaining == 4


def test_each_recipient_gets_so_many_calls_an_hour_counted_per_address(limiter: Limiter) -> None:
    limits = limiter(RateLimits(per_key_per_second=0, per_key_burst=0, per_recipient_per_hour=3))
    minute = 60_000
    for n in range(3):
        assert limits.acquire("key", ["user@example.com"], now_ms=T0 + 10 * n * minute).allowed
    # the 4th within the hour is refused until the oldest call is an hour old
    refused = limits.acquire("other-key", ["user@example.com"], now_ms=T0 + 30 * minute)
    assert refused == RateDecision(False, 3, 0, 1_800, 1_800, "recipient")
    assert refused.headers()["Retry-After"] == "1800"
    # the same address written differently counts together; another address is untouched
    assert not limits.acquire("key", ["  USER@Example.com "], now_ms=T0 + 30 * minute).allowed
    assert limits.acquire("key", ["someone.else@example.com"], now_ms=T0 + 30 * minute).allowed
    # the window slides: one ms early is still refused; at an hour the oldest call no longer counts
    assert not limits.acquire("key", ["user@example.com"], now_ms=T0 + HOUR - 1).allowed
    assert limits.acquire("key", ["user@example.com"], now_ms=T0 + HOUR).allowed
    # and it is full again, now until the call made 10 minutes after the first is an hour old
    again = limits.acquire("key", ["user@example.com"], now_ms=T0 + HOUR)
    assert (again.refused_by, again.retry_after_seconds) == ("recipient", 600)


def test_a_refused_call_consumes_nothing(limiter: Limiter) -> None:
    limits = limiter(RateLimits(per_key_per_second=0.001, per_key_burst=3, per_recipient_per_hour=1))
    assert limits.acquire("key", ["busy@example.com"], now_ms=T0).remaining == 2
    # refused by one recipient's window: neither the tokens nor the other recipient's window are taken
    refused = limits.acquire("key", ["free@example.com", "busy@example.com"], now_ms=T0)
    assert refused.refused_by == "recipient"
    free = limits.acquire("key", ["free@example.com"], now_ms=T0)
    assert (free.allowed, free.remaining) == (True, 1)
    # refused by the bucket: the recipient's window is not taken
    assert limits.acquire("key", ["new@example.com"], now_ms=T0).remaining == 0
    assert limits.acquire("key", ["late@example.com"], now_ms=T0).refused_by == "api_key"
    assert limits.acquire("another-key", ["late@example.com"], now_ms=T0).allowed


def test_when_both_refuse_the_longer_wait_is_reported(limiter: Limiter) -> None:
    limits = limiter(RateLimits(per_key_per_second=1, per_key_burst=1, per_recipient_per_hour=1))
    assert limits.acquire("key", ["a@example.com"], now_ms=T0).allowed
    both = limits.acquire("key", ["a@example.com"], now_ms=T0)
    assert (both.refused_by, both.limit, both.retry_after_seconds) == ("recipient", 1, 3_600)


def test_a_limit_at_zero_is_off(limiter: Limiter) -> None:
    # no per-key bucket: only the recipients are counted, and there is no bucket to describe
    no_bucket = limiter(RateLimits(per_key_per_second=0, per_key_burst=5, per_recipient_per_hour=2))
    decisions = [no_bucket.acquire("key", [f"u{n}@example.com"], now_ms=T0) for n in range(50)]
    assert all(d == RateDecision.unlimited() for d in decisions)
    assert decisions[0].headers() == {}
    assert no_bucket.acquire("key", ["u1@example.com"], now_ms=T0).allowed
    assert no_bucket.acquire("key", ["u1@example.com"], now_ms=T0).refused_by == "recipient"
    # no per-recipient window: one address as often as the bucket lets through
    no_window = limiter(RateLimits(per_key_per_second=1, per_key_burst=0, per_recipient_per_hour=0))
    assert no_window.acquire("key", ["u1@example.com"], now_ms=T0) == RateDecision.unlimited()
    only_bucket = limiter(RateLimits(per_key_per_second=1000, per_key_burst=100, per_recipient_per_hour=0))
    assert all(only_bucket.acquire("key", ["u1@example.com"], now_ms=T0).allowed for _ in range(100))


def test_with_every_limit_off_redis_is_not_even_asked() -> None:
    dead = redis_client(f"redis://127.0.0.1:{free_port()}/0")
    limits = RedisRateLimiter(dead, RateLimits(0, 0, 0))
    assert limits.acquire("key", ["a@example.com", "b@example.com"]) == RateDecision.unlimited()


def test_each_recipient_costs_a_token(limiter: Limiter) -> None:
    limits = limiter(RateLimits(per_key_per_second=1, per_key_burst=5, per_recipient_per_hour=0))
    three = ["a@example.com", "b@example.com", "c@example.com"]
    assert limits.acquire("key", three, now_ms=T0).remaining == 2
    short = limits.acquire("key", three, now_ms=T0)
    assert (short.allowed, short.retry_after_seconds) == (False, 1)  # one token short, at 1/s
    assert limits.acquire("key", three[:2], now_ms=T0).remaining == 0
    # a call without recipients still costs one token
    assert limits.acquire("key", [], now_ms=T0 + 1_000).allowed
    assert not limits.acquire("key", [], now_ms=T0 + 1_000).allowed


def test_a_call_larger_than_the_burst_passes_on_a_full_bucket_and_leaves_a_debt(limiter: Limiter) -> None:
    limits = limiter(RateLimits(per_key_per_second=1, per_key_burst=5, per_recipient_per_hour=0))
    batch = [f"user{n}@example.com" for n in range(8)]
    big = limits.acquire("key", batch, now_ms=T0)
    assert (big.allowed, big.remaining, big.reset_seconds) == (True, 0, 8)  # 5 - 8 = -3 tokens
    after = limits.acquire("key", ["a@example.com"], now_ms=T0)
    assert (after.refused_by, after.retry_after_seconds) == ("api_key", 4)  # from -3 to 1
    # a big call waits for a full bucket, not for its whole cost
    assert not limits.acquire("key", batch, now_ms=T0 + 7_999).allowed
    assert limits.acquire("key", batch, now_ms=T0 + 8_000).allowed


def test_concurrent_calls_never_exceed_the_limits(limiter: Limiter) -> None:
    limits = limiter(RateLimits(per_key_per_second=0.001, per_key_burst=5, per_recipient_per_hour=3))
    start = threading.Barrier(20)

    def call(n: int) -> RateDecision:
        start.wait(10)
        return limits.acquire("key", [f"user{n}@example.com"], now_ms=T0)

    with ThreadPoolExecutor(20) as pool:
        decisions = list(pool.map(call, range(20)))
    assert sum(d.allowed for d in decisions) == 5
    assert sorted(d.remaining for d in decisions if d.allowed) == [0, 1, 2, 3, 4]
    assert {d.refused_by for d in decisions if not d.allowed} == {"api_key"}

    same_address = threading.Barrier(20)

    def to_one(n: int) -> RateDecision:
        same_address.wait(10)
        return limits.acquire(f"key-{n}", ["Popular@example.com"], now_ms=T0)

    with ThreadPoolExecutor(20) as pool:
        decisions = list(pool.map(to_one, range(20)))
    assert sum(d.allowed for d in decisions) == 3
    assert {d.refused_by for d in decisions if not d.allowed} == {"recipient"}


def test_keys_hold_no_address_nor_api_key_and_expire(
    limiter: Limiter, client: redis.Redis, prefix: str
) -> None:
    limits = limiter(RateLimits(per_key_per_second=1, per_key_burst=5, per_recipient_per_hour=3))
    limits.acquire("secret-api-key", ["Someone@Example.com", "+447911123456"], now_ms=T0)
    keys = sorted(k.decode() for k in client.scan_iter(match=f"{prefix}:*"))
    assert keys == sorted(
        [
            limits.bucket_key("secret-api-key"),
            limits.window_key("someone@example.com"),
            limits.window_key("+447911123456"),
        ]
    )
    assert not any("secret" in k or "xample" in k.lower() or "447911" in k for k in keys)
    bucket_ttl = client.pttl(limits.bucket_key("secret-api-key"))
    assert 0 < bucket_ttl <= 2_000 + BUCKET_TTL_MARGIN_MS  # 2 tokens to refill at 1/s, plus the margin
    window_ttl = client.pttl(limits.window_key("+447911123456"))
    assert 0 < window_ttl <= HOUR


def test_without_a_time_the_redis_server_clock_is_used(limiter: Limiter) -> None:
    limits = limiter(RateLimits(per_key_per_second=0.001, per_key_burst=2, per_recipient_per_hour=0))
    assert limits.acquire("key", ["a@example.com"]).allowed
    assert limits.acquire("key", ["a@example.com"]).allowed
    refused = limits.acquire("key", ["a@example.com"])
    assert refused.refused_by == "api_key"
    assert 1 <= refused.retry_after_seconds <= 1_000  # one token at 0.001/s


def test_redis_down_is_a_dependency_error() -> None:
    dead = RedisRateLimiter(redis_client(f"redis://127.0.0.1:{free_port()}/0"), RateLimits(1, 5, 3))
    with pytest.raises(DependencyUnavailable) as error:
        dead.acquire("key", ["a@example.com"], now_ms=T0)
    assert error.value.dependency == "redis"
    with pytest.raises(DependencyUnavailable):
        dead.check()


def test_check_answers_when_redis_does(limiter: Limiter) -> None:
    limiter(RateLimits(1, 5, 3)).check()
