"""Which provider serves each channel, chosen from the settings."""

from __future__ import annotations

from notification_service.domain.model import Channel
from notification_service.ports import Provider
from notification_service.providers.mock import MockProvider
from notification_service.settings import Settings


def build_providers(settings: Settings) -> dict[Channel, Provider]:
    """Every channel is a mock for now; the real SMTP, Twilio and Telegram providers replace the mock
    for a channel whose credentials are configured."""
    return {
        channel: MockProvider(
            channel, fail=channel in settings.failing_mock_channels, latency_ms=settings.mock_latency_ms
        )
        for channel in Channel
    }
