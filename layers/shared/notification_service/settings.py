"""Configuration: one frozen settings object, read from the environment and validated at cold start."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from notification_service.domain.api_keys import ApiKeyEntry, InvalidApiKeyEntry, parse_entries
from notification_service.domain.model import Channel
from notification_service.domain.rate_limit import RateLimits
from notification_service.domain.retry_policy import RetryPolicy
from notification_service.domain.sweep import SweepPolicy
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
    # How long a worker owns a round. Longer than the dispatch timeout (60 s) in production, so a live
    # round is never taken over; a send is not started with less than SEND_BUDGET left in the lease,
    # and a takeover never resends the channel in flight (write-ahead), so shorter leases stay safe.
    dispatch_lease_seconds: int = Field(default=120, ge=5, le=900)
    # The sweeper re-enqueues a record that has not moved this long after it was due (pending after
    # acceptance, retrying after its next round was due; processing as soon as its lease ran out),
    # and fails it after SWEEP_MAX_REQUEUES repairs without progress.
    sweep_grace_seconds: int = Field(default=60, ge=1, le=3600)
    sweep_max_requeues: int = Field(default=6, ge=1, le=100)
    # A send in flight when its worker died, with no recorded answer: `skip` marks it uncertain and
    # never sends it again (at most once: it may never arrive); `resend` sends it again (at least
    # once: it may arrive twice).
    uncertain_sends: Literal["skip", "resend"] = "skip"
    # The longest SQS delay (15 minutes); a notification scheduled further ahead hops in steps of it.
    schedule_hop_seconds: int = Field(default=900, ge=1, le=900)
    idempotency_ttl_seconds: int = Field(default=86_400, ge=60)
    retention_days: int = Field(default=30, ge=1)
    max_body_bytes: int = Field(default=65_536, ge=1_024, le=262_144)
    # POST /api/v1/notifications/batch carries up to 100 requests (API Gateway accepts 10 MB)
    max_batch_body_bytes: int = Field(default=2_097_152, ge=1_024, le=6_291_456)

    # Email over SMTP: a real provider when SMTP_HOST is set, else the mock.
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = "noreply@example.com"
    smtp_tls: Literal["starttls", "ssl", "none"] | None = None  # default: ssl on port 465, else starttls
    smtp_timeout_seconds: float = Field(default=10, gt=0, le=60)
    smtp_ca_file: str = ""  # extra CA bundle to trust (a private relay's certificate)
    # SMS over Twilio: real when TWILIO_ACCOUNT_SID is set.
    twilio_account_sid: str = ""
    twilio_auth_token: SecretStr = SecretStr("")
    twilio_from_number: str = ""
    twilio_messaging_service_sid: str = ""
    twilio_api_base: str = "https://api.twilio.com"
    twilio_timeout_seconds: float = Field(default=10, gt=0, le=60)
    # The API's public base URL (stage included, e.g. https://abc.execute-api.us-east-1.amazonaws.com/Prod):
    # when set, each SMS asks Twilio for status callbacks at <base>/api/v1/providers/twilio/status
    # (provider receipts: delivered / undelivered). Empty: no callbacks requested.
    twilio_status_callback_base: str = ""
    # Telegram Bot API: real when TELEGRAM_BOT_TOKEN is set.
    telegram_bot_token: SecretStr = SecretStr("")
    telegram_api_base: str = "https://api.telegram.org"
    telegram_timeout_seconds: float = Field(default=10, gt=0, le=60)
    # Deployed: empty secrets above are read from SSM Parameter Store SecureStrings under this prefix
    # (smtp-password, twilio-auth-token, telegram-bot-token).
    secrets_parameter_prefix: str = ""

    mock_fail_channels: str = ""
    mock_latency_ms: int = Field(default=0, ge=0, le=60_000)

    # Who may call the API: `name:sha256hex` entries (the SHA-256 of each key, never the key). Empty:
    # the API checks no key (behind API Gateway API keys the gateway checks them; locally, auth is off).
    api_keys: str = ""

    @field_validator("api_keys")
    @classmethod
    def _api_key_entries(cls, value: str) -> str:
        try:
            parse_entries(value)
        except InvalidApiKeyEntry as exc:
            raise ValueError(str(exc)) from None
        return value

    @cached_property
    def api_key_entries(self) -> tuple[ApiKeyEntry, ...]:
        return parse_entries(self.api_keys)

    # Accepting notifications, per API key (a token bucket: one token per notification) and per
    # recipient address (a sliding hour); 0 turns a limit off. Above them: 429 with Retry-After.
    rate_limit_per_key_per_second: float = Field(default=50, ge=0)
    rate_limit_per_key_burst: int = Field(default=100, ge=0)
    rate_limit_per_recipient_per_hour: int = Field(default=60, ge=0)

    # Delivery webhooks: the queue their attempts travel on (empty: callback_url is refused), the
    # secret that signs them (per API key in WEBHOOK_SECRETS as name:secret entries, else
    # WEBHOOK_SECRET; deployed, an empty WEBHOOK_SECRET is read from SSM <prefix>webhook-secret), and
    # whether private addresses may receive them (only for the local stack's own receivers).
    webhook_queue_url: str = ""
    webhook_secret: SecretStr = SecretStr("")
    webhook_secrets: SecretStr = SecretStr("")
    allow_private_webhooks: bool = False
    webhook_max_attempts: int = Field(default=8, ge=1, le=20)
    webhook_timeout_seconds: float = Field(default=5, gt=0, le=30)
    webhook_backoff_seconds: int = Field(default=10, ge=1, le=900)  # before attempt 2; x3 each time

    # The admin page's log lines: the other functions' log groups, comma-separated (template.yaml
    # names them), and the function's own (set by Lambda and the local runtime).
    log_groups: str = ""
    aws_lambda_log_group_name: str = ""
    # Set by `sam local` and `notifyctl local`: without API_KEYS, a local stack asks for no key.
    aws_sam_local: bool = False

    @property
    def keys_required(self) -> bool:
        """Whether callers must send a key: with API_KEYS, always; without, only deployed (API
        Gateway asks for one), not on a local stack."""
        return bool(self.api_key_entries) or not self.aws_sam_local

    @cached_property
    def webhook_secrets_by_owner(self) -> dict[str, str]:
        entries = (
            entry.strip().partition(":") for entry in self.webhook_secrets.get_secret_value().split(",")
        )
        return {name: secret for name, _, secret in entries if name and secret}

    def webhook_secret_for(self, owner: str) -> str | None:
        """The secret that signs `owner`'s webhooks: its own, else the service's, else None."""
        return self.webhook_secrets_by_owner.get(owner) or self.webhook_secret.get_secret_value() or None

    @cached_property
    def rate_limits(self) -> RateLimits:
        return RateLimits(
            per_key_per_second=self.rate_limit_per_key_per_second,
            per_key_burst=self.rate_limit_per_key_burst,
            per_recipient_per_hour=self.rate_limit_per_recipient_per_hour,
        )

    @field_validator("mock_fail_channels")
    @classmethod
    def _known_channels(cls, value: str) -> str:
        for name in _split(value):
            if name not in {c.value for c in Channel}:
                raise ValueError(f"unknown channel {name!r} (use email, sms, telegram)")
        return value

    @field_validator("twilio_status_callback_base")
    @classmethod
    def _callback_base(cls, value: str) -> str:
        base = value.strip().rstrip("/")
        if base and not base.startswith(("https://", "http://")):
            raise ValueError(
                "use the API's public base URL, e.g. https://abc.execute-api.<region>.amazonaws.com/Prod"
            )
        return base

    @field_validator("smtp_tls", mode="before")
    @classmethod
    def _tls_mode(cls, value: object) -> object:
        return (value.strip().lower() or None) if isinstance(value, str) else value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("use DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @model_validator(mode="after")
    def _providers_complete(self) -> Settings:
        if self.smtp_tls == "none" and (self.smtp_user or self.smtp_password.get_secret_value()):
            raise ValueError(
                "SMTP_TLS=none sends credentials in clear text: use starttls or ssl with SMTP_USER"
            )
        if self.dispatch_lease_seconds <= self.send_budget_seconds:
            raise ValueError(
                f"DISPATCH_LEASE_SECONDS must be longer than one send ({self.send_budget_seconds:.0f} s: "
                "the slowest provider timeout + 2 s)"
            )
        if self.twilio_account_sid and not (self.twilio_from_number or self.twilio_messaging_service_sid):
            raise ValueError(
                "TWILIO_ACCOUNT_SID is set: set TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID"
            )
        return self

    @property
    def send_budget_seconds(self) -> float:
        """Time one send may take: the slowest provider's timeout and a margin for the writes around it.
        The dispatch does not start a send with less left in its invocation or its lease."""
        return max(self.smtp_timeout_seconds, self.twilio_timeout_seconds, self.telegram_timeout_seconds) + 2

    @property
    def smtp_tls_mode(self) -> str:
        return self.smtp_tls or ("ssl" if self.smtp_port == 465 else "starttls")

    @cached_property
    def failing_mock_channels(self) -> frozenset[Channel]:
        return frozenset(Channel(name) for name in _split(self.mock_fail_channels))

    @cached_property
    def sweep_policy(self) -> SweepPolicy:
        return SweepPolicy(
            grace=timedelta(seconds=self.sweep_grace_seconds), max_sweeps=self.sweep_max_requeues
        )

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
            f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            if err["loc"]
            else str(err["msg"]).removeprefix("Value error, ")
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from None
