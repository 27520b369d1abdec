"""The Redis-backed delivery ledger and provider health, and secrets read from SSM Parameter Store."""

from __future__ import annotations

import uuid

import boto3
import pytest
from notification_service.adapters.redis_delivery_ledger import RedisDeliveryLedger
from notification_service.adapters.redis_idempotency import redis_client
from notification_service.adapters.redis_provider_health import RedisProviderHealth
from notification_service.adapters.secrets import with_parameter_store_secrets
from notification_service.domain.delivery import Delivered, DeliveryFailed
from notification_service.domain.model import Channel, FailureKind
from notification_service.errors import DependencyUnavailable
from notification_service.settings import Settings

from infra.emulator import Emulator, free_port


def test_the_ledger_remembers_each_answer_per_round_and_channel(redis_url: str) -> None:
    ledger = RedisDeliveryLedger(redis_client(redis_url), prefix=f"test-{uuid.uuid4().hex}:")
    refused = DeliveryFailed(FailureKind.TRANSIENT, "SMTP 451", retry_after_seconds=30)
    misconfigured = DeliveryFailed.misconfigured("SMTP authentication failed (535)")
    assert ledger.outcome("n-1", 1, Channel.EMAIL) is None
    ledger.record("n-1", 1, Channel.EMAIL, refused)
    ledger.record("n-1", 1, Channel.SMS, misconfigured)
    ledger.record("n-1", 2, Channel.EMAIL, Delivered("<id@example.com>"))
    assert ledger.outcome("n-1", 1, Channel.EMAIL) == refused
    assert ledger.outcome("n-1", 1, Channel.SMS) == misconfigured
    assert ledger.outcome("n-1", 2, Channel.EMAIL) == Delivered("<id@example.com>")
    assert ledger.outcome("n-2", 1, Channel.EMAIL) is None


def test_the_ledger_says_whether_a_claimed_first_send_started_while_it_holds_the_claim(
    redis_url: str,
) -> None:
    client = redis_client(redis_url)
    prefix = f"test-{uuid.uuid4().hex}:"
    ledger = RedisDeliveryLedger(client, prefix=prefix)
    assert ledger.started("n-1", 1, "t1", Channel.EMAIL) is None  # no claim on record: cannot say
    ledger.mark_claim("n-1", 1, "t1")
    assert ledger.started("n-1", 1, "t1", Channel.EMAIL) is False
    ledger.mark_started("n-1", 1, Channel.EMAIL)
    assert ledger.started("n-1", 1, "t1", Channel.EMAIL) is True
    assert ledger.started("n-1", 1, "t1", Channel.SMS) is False
    assert ledger.started("n-1", 1, "t2", Channel.EMAIL) is None  # another claim's token
    assert 0 < client.ttl(f"{prefix}n-1:1") <= 7 * 24 * 3600
    client.delete(f"{prefix}n-1:1")  # evicted or flushed: the claim goes with the marks
    ledger.mark_started("n-1", 1, Channel.SMS)
    assert ledger.started("n-1", 1, "t1", Channel.EMAIL) is None
    client.delete(f"{prefix}n-1:1")


def test_provider_health_reports_and_clears(redis_url: str) -> None:
    client = redis_client(redis_url)
    prefix = f"test-{uuid.uuid4().hex}:"
    reporter, reader = RedisProviderHealth(client, prefix), RedisProviderHealth(client, prefix)
    reporter.report(Channel.EMAIL, "SMTP authentication failed (535)")
    assert reader.problems() == {Channel.EMAIL: "SMTP authentication failed (535)"}
    reporter.report(Channel.EMAIL, None)
    assert reader.problems() == {}


def test_redis_down_is_a_dependency_error_for_both() -> None:
    dead = redis_client(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(DependencyUnavailable):
        RedisDeliveryLedger(dead).outcome("n", 1, Channel.SMS)
    with pytest.raises(DependencyUnavailable):
        RedisDeliveryLedger(dead).record("n", 1, Channel.SMS, Delivered("x"))
    with pytest.raises(DependencyUnavailable):
        RedisDeliveryLedger(dead).mark_claim("n", 1, "t")
    with pytest.raises(DependencyUnavailable):
        RedisDeliveryLedger(dead).mark_started("n", 1, Channel.SMS)
    with pytest.raises(DependencyUnavailable):
        RedisDeliveryLedger(dead).started("n", 1, "t", Channel.SMS)
    with pytest.raises(DependencyUnavailable):
        RedisProviderHealth(dead).problems()


def test_empty_secrets_are_read_from_parameter_store(emulator: Emulator) -> None:
    # GIVEN provider secrets stored as SecureStrings under a prefix, one of them also set directly
    prefix = f"/it-{uuid.uuid4().hex[:8]}"
    ssm = boto3.client("ssm", endpoint_url=emulator.endpoint_url)
    ssm.put_parameter(Name=f"{prefix}/telegram-bot-token", Value="123:from-ssm", Type="SecureString")
    ssm.put_parameter(Name=f"{prefix}/smtp-password", Value="ssm-password", Type="SecureString")
    settings = Settings(
        table_name="t",
        queue_url="q",
        secrets_parameter_prefix=f"{prefix}/",
        smtp_password="from-env",  # type: ignore[arg-type]
    )
    # WHEN the settings are completed from the store
    completed = with_parameter_store_secrets(settings)
    # THEN empty secrets come from SSM, a secret set in the environment wins, a missing one stays empty
    assert completed.telegram_bot_token.get_secret_value() == "123:from-ssm"
    assert completed.smtp_password.get_secret_value() == "from-env"
    assert completed.twilio_auth_token.get_secret_value() == ""


def test_without_a_prefix_nothing_is_read() -> None:
    settings = Settings(table_name="t", queue_url="q")
    assert with_parameter_store_secrets(settings) is settings
