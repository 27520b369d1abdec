"""The API's rate limits (domain/rate_limit.py) in the Redis-compatible cache, in one round trip.

One Lua script (EVALSHA; redis-py loads it and retries when the server does not know it) decides and
consumes atomically, so concurrent Lambdas never let more through than the limits allow:

- the API key's token bucket is a hash {tokens, ts}: refilled by the time elapsed since ts at
  PER_KEY_PER_SECOND, up to PER_KEY_BURST; a call costs one token per recipient (one at least). A call
  costing more than the burst passes on a full bucket and leaves it in debt (negative tokens), so it is
  not refused forever and the long-run rate still holds. The key expires once the bucket would be full
  again (plus a margin): a missing bucket is a full one;
- each distinct recipient (SHA-256 of the normalized address) has a sorted set of the calls of the last
  hour (score: the time in ms, member: unique per call); older entries are trimmed at every call and
  the set expires an hour after its newest entry;
- only when the bucket and every window allow the call are the tokens taken and the entries added; a
  refused call consumes nothing. It waits for the limit that refuses longest: the bucket's deficit at
  its refill rate, or until the window's entry that keeps it full is an hour old.

The time is the Redis server's (TIME inside the script), so Lambdas with skewed clocks agree; tests pass
`now_ms`. All keys of a call go to one script, so a Redis Cluster would need them in one hash slot
(e.g. a prefix with a hash tag, "{ratelimit}"). Redis errors -> DependencyUnavailable("redis").
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import redis

from notification_service.domain.rate_limit import (
    WINDOW_SECONDS,
    RateDecision,
    RateLimits,
    api_key_id,
    recipient_key,
)
from notification_service.errors import DependencyUnavailable

BUCKET_TTL_MARGIN_MS = 60_000

# KEYS[1] the bucket, KEYS[2..] the recipients' windows.
# ARGV: now_ms ("" = the server's TIME), rate (tokens/s, 0 = off), burst (0 = off), cost,
#       per-recipient limit (0 = off), window_ms, member (unique per call), bucket TTL margin (ms).
# Returns {allowed, refused_by (0 none, 1 api key, 2 recipient), limit, remaining, reset_ms, retry_ms}.
_ACQUIRE = """
if redis.replicate_commands then redis.replicate_commands() end
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local per_recipient = tonumber(ARGV[5])
local window = tonumber(ARGV[6])
local member = ARGV[7]
local margin = tonumber(ARGV[8])
local EPSILON = 1e-9

local bucket_on = rate > 0 and burst > 0
local tokens, stamp = 0, now
local bucket_wait = 0
if bucket_on then
  local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
  tokens = tonumber(state[1]) or burst
  stamp = tonumber(state[2]) or now
  if now > stamp then
    tokens = math.min(burst, tokens + (now - stamp) * rate / 1000)
    stamp = now
  end
  local needed = math.min(cost, burst)
  if tokens + EPSILON < needed then
    bucket_wait = math.ceil((needed - tokens) * 1000 / rate)
  end
end

local window_wait = 0
if per_recipient > 0 then
  for i = 2, #KEYS do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
    local count = redis.call('ZCARD', KEYS[i])
    if count >= per_recipient then
      local nth = count - per_recipient
      local blocking = redis.call('ZRANGE', KEYS[i], nth, nth, 'WITHSCORES')
      local wait = tonumber(blocking[2]) + window - now
      if wait > window_wait then window_wait = wait end
    end
  end
end

local function whole(x) return math.max(0, math.floor(x + EPSILON)) end
local function until_full() return math.max(0, math.ceil((burst - tokens) * 1000 / rate)) end

if bucket_wait > 0 or window_wait > 0 then
  if bucket_wait >= window_wait then
    return {0, 1, burst, whole(tokens), until_full(), bucket_wait}
  end
  return {0, 2, per_recipient, 0, window_wait, window_wait}
end

if per_recipient > 0 then
  for i = 2, #KEYS do
    redis.call('ZADD', KEYS[i], now, member)
    redis.call('PEXPIRE', KEYS[i], window)
  end
end
if not bucket_on then
  return {1, 0, 0, 0, 0, 0}
end
tokens = tokens - cost
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%d', stamp))
redis.call('PEXPIRE', KEYS[1], until_full() + margin)
return {1, 0, burst, whole(tokens), until_full(), 0}
"""


class RedisRateLimiter:
    def __init__(self, client: redis.Redis, limits: RateLimits, prefix: str = "ratelimit") -> None:
        self._client = client
        self._limits = limits
        self._prefix = prefix
        self._script = client.register_script(_ACQUIRE)

    def bucket_key(self, api_key: str) -> str:
        return f"{self._prefix}:key:{api_key_id(api_key)}"

    def window_key(self, address: str) -> str:
        return f"{self._prefix}:recipient:{recipient_key(address)}"

    def acquire(
        self, api_key: str, recipients: Sequence[str], now_ms: int | None = None, *, cost: int | None = None
    ) -> RateDecision:
        """Let one call from `api_key` to `recipients` through, or say which limit refuses it and for
        how long. An allowed call is counted; a refused one is not. It costs `cost` tokens (default:
        one per recipient, one at least): the API charges one per notification."""
        limits = self._limits
        windows = sorted({self.window_key(a) for a in recipients}) if limits.per_recipient_on else []
        if not limits.per_key_on and not windows:
            return RateDecision.unlimited()
        keys = [self.bucket_key(api_key), *windows]
        args: list[str | int] = [
            "" if now_ms is None else int(now_ms),
            repr(float(limits.per_key_per_second)) if limits.per_key_on else 0,
            limits.per_key_burst if limits.per_key_on else 0,
            max(1, len(recipients) if cost is None else cost),
            limits.per_recipient_per_hour if limits.per_recipient_on else 0,
            WINDOW_SECONDS * 1000,
            uuid.uuid4().hex,
            BUCKET_TTL_MARGIN_MS,
        ]
        try:
            reply = self._script(keys=keys, args=args)
        except redis.RedisError as exc:
            raise DependencyUnavailable("redis", type(exc).__name__) from exc
        allowed, refused_by, limit, remaining, reset_ms, retry_ms = (int(value) for value in reply)
        if allowed:
            if limit <= 0:
                return RateDecision.unlimited()
            return RateDecision.allow(limit, remaining, reset_ms)
        return RateDecision.refuse(
            "api_key" if refused_by == 1 else "recipient", limit, remaining, reset_ms, retry_ms
        )

    def check(self) -> None:
        try:
            self._client.ping()
        except redis.RedisError as exc:
            raise DependencyUnavailable("redis", type(exc).__name__) from exc
