"""Which provider serves each channel: the real one when its credentials are configured, else the mock
(the seed's promise: "mock by default, real via env")."""

from __future__ import annotations

from notification_service.domain.model import Channel
from notification_service.ports import Provider
from notification_service.providers.mock import MockProvider
from notification_service.settings import Settings


def configured_channels(settings: Settings) -> frozenset[Channel]:
    configured = set()
    if settings.smtp_host:
        configured.add(Channel.EMAIL)
    if settings.twilio_account_sid:
        configured.add(Channel.SMS)
    if settings.telegram_bot_token.get_secret_value():
        configured.add(Channel.TELEGRAM)
    return frozenset(configured)


def build_providers(settings: Settings) -> dict[Channel, Provider]:
    real = configured_channels(settings)
    providers: dict[Channel, Provider] = {
        channel: MockProvider(
            channel, fail=channel in settings.failing_mock_channels, latency_ms=settings.mock_latency_ms
        )
        for channel in Channel
        if channel not in real
    }
    # Each real provider is imported only when configured: aiohttp and twilio alone cost a cold start
    # about 0.3 s, for nothing when SMS is a mock.
    if Channel.EMAIL in real:
        from notification_service.providers.email_smtp import SmtpEmailProvider

        providers[Channel.EMAIL] = SmtpEmailProvider(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            tls=settings.smtp_tls_mode,
            username=settings.smtp_user,
            password=settings.smtp_password.get_secret_value(),
            timeout_seconds=settings.smtp_timeout_seconds,
            ca_file=settings.smtp_ca_file,
        )
    if Channel.SMS in real:
        from notification_service.providers.sms_twilio import TwilioSmsProvider

        providers[Channel.SMS] = TwilioSmsProvider(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            from_number=settings.twilio_from_number,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            api_base=settings.twilio_api_base,
            timeout_seconds=settings.twilio_timeout_seconds,
            status_callback_base=settings.twilio_status_callback_base,
        )
    if Channel.TELEGRAM in real:
        from notification_service.providers.telegram_bot import TelegramBotProvider

        providers[Channel.TELEGRAM] = TelegramBotProvider(
            settings.telegram_bot_token.get_secret_value(),
            api_base=settings.telegram_api_base,
            timeout_seconds=settings.telegram_timeout_seconds,
        )
    return providers
