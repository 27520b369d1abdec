"""The mock provider: what a channel without credentials uses, so the service runs out of the box.

It logs a masked line and answers with a fake provider id. `MOCK_FAIL_CHANNELS=email,sms` makes
those channels fail transiently (fault injection); `MOCK_LATENCY_MS` makes every send take that long.
"""

from __future__ import annotations

import asyncio
import uuid

from aws_lambda_powertools import Logger

from notification_service.domain.delivery import (
    Commit,
    Delivered,
    DeliveryFailed,
    OutgoingMessage,
    ProviderAnswer,
    no_commit,
)
from notification_service.domain.model import Channel
from notification_service.domain.recipient import InvalidAddress, mask_address, validate_address

logger = Logger(child=True)


class MockProvider:
    def __init__(self, channel: Channel, *, fail: bool = False, latency_ms: int = 0) -> None:
        self.channel = channel
        self._fail = fail
        self._latency = latency_ms / 1000

    async def send(self, message: OutgoingMessage, commit: Commit = no_commit) -> ProviderAnswer:
        try:
            validate_address(self.channel, message.address)
        except InvalidAddress as exc:
            return DeliveryFailed.permanent(f"invalid {self.channel.value} address: {exc}")
        await commit()
        if self._latency:
            await asyncio.sleep(self._latency)
        if self._fail:
            logger.info(
                "mock provider failing on purpose (MOCK_FAIL_CHANNELS)",
                extra={"channel": self.channel.value, "to": mask_address(message.address)},
            )
            return DeliveryFailed.transient(
                f"mock {self.channel.value} failure injected by MOCK_FAIL_CHANNELS"
            )
        provider_id = f"mock-{self.channel.value}-{uuid.uuid4().hex[:12]}"
        logger.info(
            "mock provider accepted the message",
            extra={
                "channel": self.channel.value,
                "to": mask_address(message.address),
                "provider_message_id": provider_id,
            },
        )
        return Delivered(provider_id)
