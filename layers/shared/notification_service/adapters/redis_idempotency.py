"""Idempotency-Key semantics (IETF draft) on powertools' Idempotency utility over Redis.

Same key + same payload -> the stored answer again (`replayed`); same key + other payload ->
IdempotencyKeyReused; same key while the first call runs -> IdempotencyKeyInFlight; Redis down ->
DependencyUnavailable("redis"). The payload is what the key is bound to; the action runs once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import redis
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.cache import CachePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from notification_service.errors import DependencyUnavailable, IdempotencyKeyInFlight, IdempotencyKeyReused

_REPLAYED = "__idempotency_replayed__"
logger = Logger(child=True)


def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30)


class ValidatingCachePersistenceLayer(CachePersistenceLayer):
    """powertools 3.37's cache layer rewrites a completed record without the payload-validation hash,
    so an identical retry fails validation (the bug fixed for TypeScript in powertools-lambda-typescript
    #5705). This keeps the hash on the completed record, as the DynamoDB layer does."""

    def _update_record(self, data_record: DataRecord) -> None:
        mapping: dict[str, Any] = {
            self.data_attr: data_record.response_data,
            self.status_attr: data_record.status,
            self.expiry_attr: data_record.expiry_timestamp,
        }
        if self.payload_validation_enabled:
            mapping[self.validation_key_attr] = data_record.payload_hash
        ttl = self._get_expiry_second(data_record.expiry_timestamp)
        self.client.set(name=data_record.idempotency_key, value=self._json_serializer(mapping), ex=ttl)


def _mark_replay(response: Any, idempotent_data: DataRecord) -> Any:
    return {**response, _REPLAYED: True}


class RedisIdempotency:
    def __init__(self, client: redis.Redis, ttl_seconds: int, scope: str) -> None:
        self._client = client
        self.config = IdempotencyConfig(
            event_key_jmespath="key",
            payload_validation_jmespath="payload",
            expires_after_seconds=ttl_seconds,
            response_hook=_mark_replay,
        )
        persistence = ValidatingCachePersistenceLayer(client=cast(Any, client))

        def _once(request: dict[str, Any], action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
            return action()

        guarded: Callable[..., dict[str, Any]] = idempotent_function(
            _once,
            data_keyword_argument="request",
            persistence_store=persistence,
            config=self.config,
            key_prefix=scope,
        )
        self._once = guarded

    def register_lambda_context(self, context: LambdaContext) -> None:
        """The in-flight marker expires with the invocation (a crashed request frees its key)."""
        self.config.register_lambda_context(context)

    def run(
        self, key: str, payload: dict[str, Any], action: Callable[[], dict[str, Any]]
    ) -> tuple[dict[str, Any], bool]:
        done: list[dict[str, Any]] = []

        def remembered() -> dict[str, Any]:
            done.append(action())
            return done[0]

        try:
            result: dict[str, Any] = self._once(request={"key": key, "payload": payload}, action=remembered)
        except IdempotencyValidationError:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used with a different request body"
            ) from None
        except IdempotencyAlreadyInProgressError:
            raise IdempotencyKeyInFlight("a request with this Idempotency-Key is still in progress") from None
        except IdempotencyPersistenceLayerError as exc:
            if done:  # the action ran and its result stands; only remembering it failed
                logger.warning(
                    "idempotency record not saved after the request succeeded", extra={"reason": _cause(exc)}
                )
                return done[0], False
            raise DependencyUnavailable("redis", _cause(exc)) from exc
        except redis.RedisError as exc:
            raise DependencyUnavailable("redis", type(exc).__name__) from exc
        replayed = bool(result.pop(_REPLAYED, False))
        return result, replayed

    def check(self) -> None:
        try:
            self._client.ping()
        except redis.RedisError as exc:
            raise DependencyUnavailable("redis", type(exc).__name__) from exc


def _cause(exc: IdempotencyPersistenceLayerError) -> str:
    inner = exc.args[1] if len(exc.args) > 1 else exc.__cause__
    return type(inner).__name__ if inner is not None else "error"
