"""The one place where adapters are built from settings and wired into the use cases.

Handlers call `build_api()` / `build_dispatch()` once per cold start. Tests pass their own pieces
by keyword (fakes in unit tests, real adapters against the emulator in integration tests).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from notification_service.adapters.aws import dynamodb_client, logs_client, sqs_client
from notification_service.adapters.dynamodb_repository import DynamoDbNotificationRepository
from notification_service.adapters.dynamodb_templates import DynamoDbTemplateStore
from notification_service.adapters.emf_metrics import EmfMetrics
from notification_service.adapters.log_reader import CloudWatchLogLines
from notification_service.adapters.metrics_fanout import MetricsFanout
from notification_service.adapters.redis_delivery_ledger import RedisDeliveryLedger
from notification_service.adapters.redis_idempotency import RedisIdempotency, redis_client
from notification_service.adapters.redis_metrics import RedisMetrics
from notification_service.adapters.redis_provider_health import RedisProviderHealth
from notification_service.adapters.redis_rate_limiter import RedisRateLimiter
from notification_service.adapters.secrets import with_parameter_store_secrets
from notification_service.adapters.sqs_queue import SqsDeliveryQueue, SqsWebhookQueue
from notification_service.clock import utc_now
from notification_service.domain.model import Channel
from notification_service.errors import ConfigurationError
from notification_service.ports import (
    DeliveryLedger,
    DeliveryQueue,
    HealthCheck,
    IdempotencyGuard,
    LogLines,
    MetricsExposition,
    NotificationRepository,
    Provider,
    ProviderHealth,
    RateLimiter,
    StuckRecords,
    TemplateStore,
    WebhookQueue,
    WebhookRecords,
)
from notification_service.providers.registry import build_providers
from notification_service.service.dispatch import DispatchService
from notification_service.service.notifications import NotificationService
from notification_service.service.sweeper import Sweeper
from notification_service.service.templates import TemplateService
from notification_service.service.webhooks import WebhookPoster, WebhookService
from notification_service.settings import Settings, load_settings


@dataclass(frozen=True)
class ApiDependencies:
    settings: Settings
    notifications: NotificationService
    idempotency: IdempotencyGuard
    health_checks: Mapping[str, HealthCheck]
    provider_health: ProviderHealth | None = None
    templates: TemplateService | None = None
    metrics: MetricsExposition | None = None  # what GET /metrics exposes
    rate_limiter: RateLimiter | None = None  # None: no limits
    log_lines: LogLines | None = None  # None: the admin page shows no log lines


def _repository(settings: Settings) -> DynamoDbNotificationRepository:
    return DynamoDbNotificationRepository(
        dynamodb_client(settings.aws_endpoint_url),
        settings.table_name,
        timedelta(days=settings.retention_days),
        sweep_grace=settings.sweep_policy.grace,
    )


def _queue(settings: Settings) -> SqsDeliveryQueue:
    return SqsDeliveryQueue(sqs_client(settings.aws_endpoint_url), settings.queue_url)


def build_api(
    settings: Settings | None = None,
    *,
    repository: NotificationRepository | None = None,
    queue: DeliveryQueue | None = None,
    idempotency: IdempotencyGuard | None = None,
    provider_health: ProviderHealth | None = None,
    templates: TemplateStore | None = None,
    rate_limiter: RateLimiter | None = None,
    webhooks: WebhookQueue | None = None,
    log_lines: LogLines | None = None,
    now: Callable[[], datetime] = utc_now,
) -> ApiDependencies:
    settings = settings or load_settings()
    repository = repository or _repository(settings)
    queue = queue or _queue(settings)
    cache = redis_client(settings.redis_url)
    shared_metrics = RedisMetrics(cache, key=f"metrics:{settings.table_name}")
    idempotency = idempotency or RedisIdempotency(
        cache, settings.idempotency_ttl_seconds, scope=f"api.accept-notification.{settings.table_name}"
    )
    return ApiDependencies(
        settings=settings,
        notifications=NotificationService(
            repository,
            queue,
            idempotency,
            now,
            retry_grace=settings.sweep_policy.grace,
            max_delay_seconds=settings.schedule_hop_seconds,
            metrics=MetricsFanout([shared_metrics, EmfMetrics()]),
            webhooks=webhooks or _webhook_queue(settings),
            allow_private_webhooks=settings.allow_private_webhooks,
        ),
        idempotency=idempotency,
        health_checks={"dynamodb": repository, "sqs": queue, "redis": idempotency},
        provider_health=provider_health or RedisProviderHealth(cache),
        metrics=shared_metrics,
        rate_limiter=rate_limiter
        or RedisRateLimiter(cache, settings.rate_limits, prefix=f"ratelimit:{settings.table_name}"),
        templates=TemplateService(
            templates
            or DynamoDbTemplateStore(dynamodb_client(settings.aws_endpoint_url), settings.table_name),
            now,
        ),
        log_lines=log_lines
        or CloudWatchLogLines(
            lambda: logs_client(settings.aws_endpoint_url),
            [*settings.log_groups.split(","), settings.aws_lambda_log_group_name],
        ),
    )


def build_dispatch(
    settings: Settings | None = None,
    *,
    repository: NotificationRepository | None = None,
    queue: DeliveryQueue | None = None,
    providers: Mapping[Channel, Provider] | None = None,
    provider_health: ProviderHealth | None = None,
    ledger: DeliveryLedger | None = None,
    webhooks: WebhookQueue | None = None,
    now: Callable[[], datetime] = utc_now,
) -> DispatchService:
    settings = settings or with_parameter_store_secrets(load_settings())
    cache = redis_client(settings.redis_url)
    worker = f"{os.environ.get('AWS_LAMBDA_LOG_STREAM_NAME', 'local')}/{uuid.uuid4().hex[:8]}"
    return DispatchService(
        repository=repository or _repository(settings),
        queue=queue or _queue(settings),
        providers=providers or build_providers(settings),
        policy=settings.retry_policy,
        now=now,
        worker_id=worker,
        lease=timedelta(seconds=settings.dispatch_lease_seconds),
        provider_health=provider_health or RedisProviderHealth(cache),
        ledger=ledger or RedisDeliveryLedger(cache),
        send_budget_seconds=settings.send_budget_seconds,
        resend_uncertain=settings.uncertain_sends == "resend",
        max_delay_seconds=settings.schedule_hop_seconds,
        metrics=MetricsFanout([RedisMetrics(cache, key=f"metrics:{settings.table_name}"), EmfMetrics()]),
        webhooks=webhooks or _webhook_queue(settings),
        webhook_grace=settings.sweep_policy.grace,
    )


def build_sweeper(
    settings: Settings | None = None,
    *,
    records: StuckRecords | None = None,
    queue: DeliveryQueue | None = None,
    now: Callable[[], datetime] = utc_now,
) -> Sweeper:
    settings = settings or load_settings()
    return Sweeper(
        records=records or _repository(settings),
        queue=queue or _queue(settings),
        policy=settings.sweep_policy,
        now=now,
        webhooks=_webhook_queue(settings),
    )


def _webhook_queue(settings: Settings) -> SqsWebhookQueue | None:
    """None when the deployment has no webhook queue (callback_url is then refused)."""
    if not settings.webhook_queue_url:
        return None
    return SqsWebhookQueue(sqs_client(settings.aws_endpoint_url), settings.webhook_queue_url)


def build_webhooks(
    settings: Settings | None = None,
    *,
    records: WebhookRecords | None = None,
    queue: WebhookQueue | None = None,
    poster: WebhookPoster | None = None,
    now: Callable[[], datetime] = utc_now,
) -> WebhookService:
    settings = settings or with_parameter_store_secrets(load_settings())
    from notification_service.adapters.webhook_sender import WebhookSender  # the webhook function's own

    webhook_queue = queue or _webhook_queue(settings)
    if webhook_queue is None:
        raise ConfigurationError("WEBHOOK_QUEUE_URL is not set: the webhook function has nothing to read")
    return WebhookService(
        records=records or _repository(settings),
        queue=webhook_queue,
        poster=poster
        or WebhookSender(
            allow_private=settings.allow_private_webhooks, timeout_seconds=settings.webhook_timeout_seconds
        ),
        secret_for=settings.webhook_secret_for,
        now=now,
        max_attempts=settings.webhook_max_attempts,
        grace=settings.sweep_policy.grace,
        backoff_base_seconds=settings.webhook_backoff_seconds,
    )
