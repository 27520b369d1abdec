"""Configuration: one frozen settings object, read from the environment and validated at cold start."""

from __future__ import annotations

from functools import cached_property

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from notification_service.domain.model import Channel
from notification_service.domain.retry_policy import RetryPolicy
from notification_service.errors import ConfigurationError


class Settings(BaseSettings):
    """Every variable is documented in .env.example and README.md (same names, same defaults)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)

    log_level: str = "INFO"
    table_name: str = Field(min_length=1)
    queue_url: str = Field(min_length=1)
    aws_endpoint_url: str | None = None
    redis_url: str = "redis://localhost:6379/0"

    max_retry_attempts: int = Field(default=3, ge=1, le=20)
    retry_backoff_base: int = Field(default=2, ge=1, le=900)
    dispatch_lease_seconds: int = Field(default=120, ge=5, le=900)
    idempotency_ttl_seconds: int = Field(default=86_400, ge=60)
    retention_days: int = Field(default=30, ge=1)
    max_body_bytes: int = Field(default=65_536, ge=1_024, le=262_144)

    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = "noreply@example.com"
    twilio_account_sid: str = ""
    twilio_auth_token: SecretStr = SecretStr("")
    twilio_from_number: str = ""
    telegram_bot_token: SecretStr = SecretStr("")

    mock_fail_channels: str = ""
    mock_latency_ms: int = Field(default=0, ge=0, le=60_000)

    @field_validator("mock_fail_channels")
    @classmethod
    def _known_channels(cls, value: str) -> str:
        for name in _split(value):
            if name not in {c.value for c in Channel}:
                raise ValueError(f"unknown channel {name!r} (use email, sms, telegram)")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("use DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @cached_property
    def failing_mock_channels(self) -> frozenset[Channel]:
        return frozenset(Channel(name) for name in _split(self.mock_fail_channels))

    @cached_property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_rounds=self.max_retry_attempts, backoff_base=self.retry_backoff_base)


def _split(value: str) -> list[str]:
    return [part.strip().lower() for part in value.split(",") if part.strip()]


def load_settings() -> Settings:
    """Read and validate the environment; a bad value stops the cold start with the variable's name."""
    try:
        return Settings()  # type: ignore[call-arg]  # required fields come from the environment
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from None
