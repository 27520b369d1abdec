"""DeliveryLedger in the Redis-compatible cache: one key per delivered (notification, channel)."""

from __future__ import annotations

import redis

from notification_service.domain.model import Channel
from notification_service.errors import DependencyUnavailable

LEDGER_TTL_SECONDS = 7 * 24 * 3600  # longer than any retry schedule (3 rounds, 900 s at most each)


class RedisDeliveryLedger:
    def __init__(self, client: redis.Redis, prefix: str = "delivered:") -> None:
        self._client = client
        self._prefix = prefix

    def _key(self, notification_id: str, channel: Channel) -> str:
        return f"{self._prefix}{notification_id}:{channel.value}"

    def delivered(self, notification_id: str, channel: Channel) -> str | None:
        try:
            value = self._client.get(self._key(notification_id, channel))
        except redis.RedisError as exc:
            raise DependencyUnavailable("redis", type(exc).__name__) from exc
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    def record(self, notification_id: str, channel: Channel, provider_message_id: str) -> None:
        try:
            self._client.set(self._key(notification_id, channel), provider_message_id, ex=LEDGER_TTL_SECONDS)
        except redis.RedisError as exc:
            raise DependencyUnavailable("redis", type(exc).__name__) from exc
