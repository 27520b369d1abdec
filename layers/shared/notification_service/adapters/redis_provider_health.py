"""ProviderHealth in the Redis-compatible cache: one key per channel with a problem, expiring on its own."""

from __future__ import annotations

import redis

from notification_service.domain.model import Channel
from notification_service.errors import DependencyUnavailable

PROBLEM_TTL_SECONDS = 900


class RedisProviderHealth:
    def __init__(self, client: redis.Redis, prefix: str = "provider-health:") -> None:
        self._client = client
        self._prefix = prefix
        self._reported: set[Channel] = set()

    def report(self, channel: Channel, problem: str | None) -> None:
        try:
            if problem is not None:
                self._client.set(self._prefix + channel.value, problem, ex=PROBLEM_TTL_SECONDS)
                self._reported.add(channel)
            elif channel in self._reported:  # only after this instance saw a problem: no write per send
                self._client.delete(self._prefix + channel.value)
                self._reported.discard(channel)
        except redis.RedisError as exc:
            raise DependencyUnavailable("redis", type(exc).__name__) from exc

    def problems(self) -> dict[Channel, str]:
        try:
            values = self._client.mget([self._prefix + channel.value for channel in Channel])
        except redis.RedisError as exc:
            raise DependencyUnavailable("redis", type(exc).__name__) from exc
        return {
            channel: value.decode() if isinstance(value, bytes) else str(value)
            for channel, value in zip(Channel, values, strict=True)
            if value is not None
        }
