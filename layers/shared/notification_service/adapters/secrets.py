"""Deployed secrets: empty SMTP_PASSWORD / TWILIO_AUTH_TOKEN / TELEGRAM_BOT_TOKEN / WEBHOOK_SECRET are
read from SSM Parameter Store SecureStrings under SECRETS_PARAMETER_PREFIX (powertools Parameters,
cached 5 min)."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from notification_service.errors import ConfigurationError
from notification_service.settings import Settings

SECRET_PARAMETERS = {
    "smtp_password": "smtp-password",
    "twilio_auth_token": "twilio-auth-token",
    "telegram_bot_token": "telegram-bot-token",
    "webhook_secret": "webhook-secret",
}
CACHE_SECONDS = 300


def with_parameter_store_secrets(settings: Settings) -> Settings:
    prefix = settings.secrets_parameter_prefix
    if not prefix:
        return settings
    wanted = {
        field: f"{prefix.rstrip('/')}/{name}"
        for field, name in SECRET_PARAMETERS.items()
        if not getattr(settings, field).get_secret_value()
    }
    if not wanted:
        return settings
    from aws_lambda_powertools.utilities import parameters  # only when a secrets path is set

    try:
        found: dict[str, Any] = parameters.get_parameters_by_name(
            {name: {} for name in wanted.values()}, decrypt=True, max_age=CACHE_SECONDS, raise_on_error=False
        )
    except Exception as exc:  # the store itself is unreachable or we may not read it
        raise ConfigurationError(f"cannot read secrets under {prefix}: {type(exc).__name__}") from exc
    updates = {field: SecretStr(str(found[name])) for field, name in wanted.items() if found.get(name)}
    return settings.model_copy(update=updates) if updates else settings
