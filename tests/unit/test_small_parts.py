"""Correlation ids, the Lazy holder, the mock provider and the provider registry."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from notification_service.correlation import HEADER, correlation_id_from
from notification_service.domain.delivery import Delivered, DeliveryFailed, OutgoingMessage
from notification_service.domain.model import Channel, FailureKind
from notification_service.lazy import Lazy
from notification_service.providers.mock import MockProvider
from notification_service.providers.registry import build_providers
from notification_service.settings import Settings


def is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


# --- correlation ids ---------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["X-Correlation-ID", "x-correlation-id", "X-CORRELATION-ID", "x-Correlation-Id"]
)
def test_correlation_id_is_taken_from_the_header_in_any_case(name: str) -> None:
    assert correlation_id_from({name: "req-123"}) == "req-123"


def test_correlation_header_name_constant() -> None:
    assert HEADER == "X-Correlation-ID"


def test_correlation_id_is_trimmed() -> None:
    assert correlation_id_from({"x-correlation-id": "  abc-1  "}) == "abc-1"


def test_correlation_id_accepts_a_128_character_token() -> None:
    token = "a" * 128

    assert correlation_id_from({"X-Correlation-ID": token}) == token


@pytest.mark.parametrize(
    "value",
    ["has space", "a" * 129, "", "   ", "line\nbreak", "<script>", "semi;colon"],
)
def test_unsafe_correlation_id_is_replaced_by_a_uuid(value: str) -> None:
    generated = correlation_id_from({"X-Correlation-ID": value})

    assert generated != value
    assert is_uuid(generated)


@pytest.mark.parametrize("headers", [None, {}, {"Content-Type": "application/json"}])
def test_missing_correlation_id_is_generated(headers: dict[str, str] | None) -> None:
    assert is_uuid(correlation_id_from(headers))


def test_generated_correlation_ids_differ() -> None:
    assert correlation_id_from(None) != correlation_id_from(None)


# --- Lazy --------------------------------------------------------------------


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return f"built-{self.calls}"


def test_lazy_builds_only_on_first_use_and_only_once() -> None:
    factory = Counter()
    lazy = Lazy(factory)
    assert factory.calls == 0

    first = lazy.get()
    second = lazy.get()

    assert first == second == "built-1"
    assert factory.calls == 1


def test_lazy_set_overrides_the_value() -> None:
    factory = Counter()
    lazy = Lazy(factory)

    lazy.set("replacement")

    assert lazy.get() == "replacement"
    assert factory.calls == 0


def test_lazy_set_none_rebuilds_on_next_use() -> None:
    factory = Counter()
    lazy = Lazy(factory)
    assert lazy.get() == "built-1"

    lazy.set(None)

    assert lazy.get() == "built-2"
    assert factory.calls == 2


def test_lazy_factory_error_surfaces_on_use_and_is_retried() -> None:
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("bad setting")
        return "ok"

    lazy = Lazy(flaky)

    with pytest.raises(RuntimeError, match="bad setting"):
        lazy.get()
    assert lazy.get() == "ok"
    assert len(attempts) == 2


# --- MockProvider and the registry -------------------------------------------


def message(channel: Channel, address: str) -> OutgoingMessage:
    return OutgoingMessage(
        notification_id="n-1",
        channel=channel,
        address=address,
        body="Hello",
        subject=None,
        correlation_id="corr-1",
    )


def test_mock_provider_delivers_with_a_mock_id() -> None:
    outcome = asyncio.run(MockProvider(Channel.EMAIL).send(message(Channel.EMAIL, "user@example.com")))

    assert isinstance(outcome, Delivered)
    assert outcome.provider_message_id.startswith("mock-email-")
    assert len(outcome.provider_message_id) == len("mock-email-") + 12


def test_mock_provider_ids_are_unique() -> None:
    provider = MockProvider(Channel.SMS)

    first = asyncio.run(provider.send(message(Channel.SMS, "+447911123456")))
    second = asyncio.run(provider.send(message(Channel.SMS, "+447911123456")))

    assert isinstance(first, Delivered)
    assert isinstance(second, Delivered)
    assert first.provider_message_id != second.provider_message_id


def test_failing_mock_provider_fails_transiently_naming_the_variable() -> None:
    provider = MockProvider(Channel.TELEGRAM, fail=True)

    outcome = asyncio.run(provider.send(message(Channel.TELEGRAM, "123456789")))

    assert isinstance(outcome, DeliveryFailed)
    assert outcome.kind is FailureKind.TRANSIENT
    assert "MOCK_FAIL_CHANNELS" in outcome.reason
    assert "telegram" in outcome.reason


def test_build_providers_serves_every_channel_and_marks_failing_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN settings that make SMS fail (and no injected latency from the environment)
    monkeypatch.delenv("MOCK_LATENCY_MS", raising=False)
    settings = Settings(table_name="t", queue_url="q", mock_fail_channels="sms")

    # WHEN the providers are built
    providers = build_providers(settings)

    # THEN every channel has a provider of its own channel, and only SMS fails
    assert set(providers) == set(Channel)
    assert all(provider.channel is channel for channel, provider in providers.items())
    addresses = {Channel.EMAIL: "user@example.com", Channel.SMS: "+447911123456", Channel.TELEGRAM: "42"}
    outcomes = {
        channel: asyncio.run(providers[channel].send(message(channel, addresses[channel])))
        for channel in Channel
    }
    assert isinstance(outcomes[Channel.SMS], DeliveryFailed)
    assert isinstance(outcomes[Channel.EMAIL], Delivered)
    assert isinstance(outcomes[Channel.TELEGRAM], Delivered)


def test_the_package_version_is_the_distributions() -> None:
    import tomllib
    from pathlib import Path

    import notification_service

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert notification_service.__version__ == pyproject["project"]["version"]
