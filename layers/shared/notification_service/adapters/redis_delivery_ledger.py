"""DeliveryLedger in the Redis-compatible cache: one key per (notification, round, channel) holding
what the provider answered, as JSON; and one hash per (notification, round) holding the claims that
wrote the round's first intent (`claim:<token>`) and the sends that started (`started:<channel>`).
A send counts as not started only while the hash still holds the claim: the hash is one key, so a
flush or an eviction loses both, and the answer is then "cannot say" (uncertain), never "not started"."""

from __future__ import annotations

import json
from typing import Any

import redis

from notification_service.domain.delivery import Delivered, DeliveryFailed, ProviderAnswer
from notification_service.domain.model import Channel, FailureKind
from notification_service.errors import DependencyUnavailable

LEDGER_TTL_SECONDS = 7 * 24 * 3600  # longer than any retry schedule (20 rounds, 900 s at most each)


def _encode(answer: ProviderAnswer) -> str:
    if isinstance(answer, Delivered):
        return json.dumps({"sent": True, "provider_message_id": answer.provider_message_id})
    return json.dumps(
        {
            "sent": False,
            "kind": answer.kind.value,
            "reason": answer.reason,
            "retry_after_seconds": answer.retry_after_seconds,
            "configuration_error": answer.configuration_error,
        }
    )


def _decode(raw: bytes | str) -> ProviderAnswer:
    data: dict[str, Any] = json.loads(raw)
    if data["sent"]:
        return Delivered(str(data["provider_message_id"]))
    return DeliveryFailed(
        FailureKind(data["kind"]),
        str(data["reason"]),
        data.get("retry_after_seconds"),
        bool(data.get("configuration_error")),
    )


class RedisDeliveryLedger:
    def __init__(self, client: redis.Redis, prefix: str = "send:") -> None:
        self._client = client
        self._prefix = prefix

    def _key(self, notification_id: str, round_no: int, channel: Channel) -> str:
        return f"{self._prefix}{notification_id}:{round_no}:{channel.value}"

    def outcome(self, notification_id: str, round_no: int, channel: Channel) -> ProviderAnswer | None:
        try:
            raw = self._client.get(self._key(notification_id, round_no, channel))
        except redis.RedisError as exc:
            raise DependencyUnavailable("redis", type(exc).__name__) from exc
        if raw is None:
            return None
        return _decode(raw if isinstance(raw, bytes | str) else str(raw))

    def _round_key(self, notification_id: str, round_no: int) -> str:
        return f"{self._prefix}{notification_id}:{round_no}"

    def mark_claim(self, notification_id: str, round_no: int, token: str) -> None:
        key = self._round_key(notification_id, round_no)
        try:
            pipe = self._client.pipeline(transaction=True)
            pipe.hset(key, f"claim:{token}", "1")
            pipe.expire(key, LEDGER_TTL_SECONDS)
            pipe.execute()
        except redis.RedisError as exc:
            raise DependencyUnavailable("redis", type(exc).__name__) from exc

    def mark_started(self, notification_id: str, round_no: int, channel: Channel) -> None:
        key = self._round_key(notification_id, round_no)
        try:
            # HSET on a vanished hash would make a fresh one without the claim: still "cannot say"
            self._client.hset(key, f"started:{channel.value}", "1")
        except redis.RedisError as exc:
            raise DependencyUnavailable("redis", type(exc).__name__) from exc

    def started(self, notification_id: str, round_no: int, token: str, channel: Channel) -> bool | None:
        try:
            claim, started = self._client.hmget(
                self._round_key(notification_id, round_no), [f"claim:{token}", f"started:{channel.value}"]
            )
        except redis.RedisError as exc:
            raise DependencyUnavailable("redis", type(exc).__name__) from exc
        if claim is None:
            return None
        return started is not None

    def record(self, notification_id: str, round_no: int, channel: Channel, answer: ProviderAnswer) -> None:
        try:
            self._client.set(
                self._key(notification_id, round_no, channel), _encode(answer), ex=LEDGER_TTL_SECONDS
            )
        except redis.RedisError as exc:
            raise DependencyUnavailable("redis", type(exc).__name__) from exc
