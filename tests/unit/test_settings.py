"""Settings from the environment; a bad value names its variable."""

from __future__ import annotations

import pytest
from notification_service.domain.model import Channel
from notification_service.domain.retry_policy import RetryPolicy
from notification_service.errors import ConfigurationError
from notification_service.settings import Settings, load_settings

VARIABLES = (
    "TABLE_NAME",
    "QUEUE_URL",
    "LOG_LEVEL",
    "AWS_ENDPOINT_URL",
    "REDIS_URL",
    "MAX_RETRY_ATTEMPTS",
    "RETRY_BACKOFF_BASE",
    "DISPATCH_LEASE_SECONDS",
    "IDEMPOTENCY_TTL_SECONDS",
    "RETENTION_DAYS",
    "MAX_BODY_BYTES",
    "MOCK_FAIL_CHANNELS",
    "MOCK_LATENCY_MS",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean environment with only the two required variables set."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("TABLE_NAME", "notifications")
    monkeypatch.setenv("QUEUE_URL", "http://localhost/queue/delivery")
    return monkeypatch


def test_defaults(env: pytest.MonkeyPatch) -> None:
    settings = load_settings()

    assert settings.table_name == "notifications"
    assert settings.queue_url == "http://localhost/queue/delivery"
    assert settings.max_retry_attempts == 3
    assert settings.retry_backoff_base == 2
    assert settings.retry_policy == RetryPolicy(max_rounds=3, backoff_base=2)
    assert settings.log_level == "INFO"
    assert settings.dispatch_lease_seconds == 120
    assert settings.failing_mock_channels == frozenset()


def test_retry_policy_follows_the_variables(env: pytest.MonkeyPatch) -> None:
    env.setenv("MAX_RETRY_ATTEMPTS", "5")
    env.setenv("RETRY_BACKOFF_BASE", "3")

    policy = load_settings().retry_policy

    assert policy == RetryPolicy(max_rounds=5, backoff_base=3)
    assert policy.next_delay(2) == 9


def test_mock_fail_channels_are_parsed_case_and_space_insensitively(env: pytest.MonkeyPatch) -> None:
    env.setenv("MOCK_FAIL_CHANNELS", "email, SMS")

    assert load_settings().failing_mock_channels == frozenset({Channel.EMAIL, Channel.SMS})


def test_mock_fail_channels_ignore_empty_items(env: pytest.MonkeyPatch) -> None:
    env.setenv("MOCK_FAIL_CHANNELS", " telegram ,, ")

    assert load_settings().failing_mock_channels == frozenset({Channel.TELEGRAM})


def test_unknown_mock_fail_channel_names_the_variable(env: pytest.MonkeyPatch) -> None:
    env.setenv("MOCK_FAIL_CHANNELS", "email,pigeon")

    with pytest.raises(ConfigurationError) as caught:
        load_settings()

    message = str(caught.value)
    assert "MOCK_FAIL_CHANNELS" in message
    assert "pigeon" in message


def test_non_numeric_max_retry_attempts_names_the_variable(env: pytest.MonkeyPatch) -> None:
    env.setenv("MAX_RETRY_ATTEMPTS", "abc")

    with pytest.raises(ConfigurationError, match="MAX_RETRY_ATTEMPTS"):
        load_settings()


@pytest.mark.parametrize("value", ["0", "21"])
def test_max_retry_attempts_out_of_range_is_rejected(env: pytest.MonkeyPatch, value: str) -> None:
    env.setenv("MAX_RETRY_ATTEMPTS", value)

    with pytest.raises(ConfigurationError, match="MAX_RETRY_ATTEMPTS"):
        load_settings()


def test_missing_table_name_names_the_variable(env: pytest.MonkeyPatch) -> None:
    env.delenv("TABLE_NAME")

    with pytest.raises(ConfigurationError) as caught:
        load_settings()

    message = str(caught.value)
    assert "TABLE_NAME" in message
    assert "QUEUE_URL" not in message


def test_empty_queue_url_is_rejected(env: pytest.MonkeyPatch) -> None:
    env.setenv("QUEUE_URL", "")

    with pytest.raises(ConfigurationError, match="QUEUE_URL"):
        load_settings()


def test_every_problem_is_reported_at_once(env: pytest.MonkeyPatch) -> None:
    env.delenv("TABLE_NAME")
    env.setenv("MAX_RETRY_ATTEMPTS", "abc")

    with pytest.raises(ConfigurationError) as caught:
        load_settings()

    assert "TABLE_NAME" in str(caught.value)
    assert "MAX_RETRY_ATTEMPTS" in str(caught.value)


def test_log_level_is_normalised_to_upper_case(env: pytest.MonkeyPatch) -> None:
    env.setenv("LOG_LEVEL", "debug")

    assert load_settings().log_level == "DEBUG"


def test_bad_log_level_is_rejected(env: pytest.MonkeyPatch) -> None:
    env.setenv("LOG_LEVEL", "verbose")

    with pytest.raises(ConfigurationError, match="LOG_LEVEL"):
        load_settings()


def test_settings_are_frozen(env: pytest.MonkeyPatch) -> None:
    settings = load_settings()

    with pytest.raises(ValueError, match="frozen"):
        settings.table_name = "other"


def test_secrets_are_not_shown(env: pytest.MonkeyPatch) -> None:
    env.setenv("TELEGRAM_BOT_TOKEN", "123:secret-token")

    settings = load_settings()

    assert settings.telegram_bot_token.get_secret_value() == "123:secret-token"
    assert "secret-token" not in repr(settings)


def test_settings_built_directly_parse_mock_fail_channels() -> None:
    settings = Settings(table_name="t", queue_url="q", mock_fail_channels="sms")

    assert settings.failing_mock_channels == frozenset({Channel.SMS})
