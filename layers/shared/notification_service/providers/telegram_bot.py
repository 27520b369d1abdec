"""Telegram over the Bot API's sendMessage, with httpx. The bot token is part of the URL: it never
appears in a log line or an error message."""

from __future__ import annotations

from typing import Any

import httpx
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
from notification_service.domain.recipient import InvalidAddress, mask_chat_id, validate_telegram_chat_id
from notification_service.providers.per_loop import PerLoop

logger = Logger(child=True)


class TelegramBotProvider:
    channel = Channel.TELEGRAM

    def __init__(
        self, token: str, *, api_base: str = "https://api.telegram.org", timeout_seconds: float = 10
    ) -> None:
        self._base_url = f"{api_base.rstrip('/')}/bot{token}/"
        self._timeout = timeout_seconds
        self._client = PerLoop(lambda: httpx.AsyncClient(base_url=self._base_url, timeout=self._timeout))

    async def send(self, message: OutgoingMessage, commit: Commit = no_commit) -> ProviderAnswer:
        try:
            chat_id = validate_telegram_chat_id(message.address)
        except InvalidAddress as exc:
            return DeliveryFailed.permanent(f"invalid chat id: {exc}")
        await commit()
        try:
            response = await self._client.get().post(
                "sendMessage", json={"chat_id": chat_id, "text": message.body}
            )
        except httpx.TimeoutException:
            return DeliveryFailed.transient("Telegram timed out")
        except httpx.HTTPError as exc:  # its text may contain the URL, and so the token: use the type only
            return DeliveryFailed.transient(f"Telegram unreachable: {type(exc).__name__}")
        payload = _json(response)
        if response.status_code == 200 and payload.get("ok"):
            message_id = payload.get("result", {}).get("message_id")
            logger.info("Telegram message sent", extra={"channel": "telegram", "to": mask_chat_id(chat_id)})
            return Delivered(str(message_id))
        failure = classify(response.status_code, payload)
        if failure.configuration_error:
            logger.error(
                "Telegram configuration error", extra={"channel": "telegram", "reason": failure.reason}
            )
        return failure


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def classify(status: int, payload: dict[str, Any]) -> DeliveryFailed:
    description = str(payload.get("description") or f"HTTP {status}")[:200]
    reason = f"Telegram answered {status}: {description}"
    if status == 429:
        retry_after = (payload.get("parameters") or {}).get("retry_after")
        return DeliveryFailed.transient(
            reason, int(retry_after) if isinstance(retry_after, int | float) else None
        )
    if status in {401, 404}:  # a wrong token answers 401 Unauthorized or 404 Not Found
        return DeliveryFailed.misconfigured(f"Telegram rejected the bot token ({status})")
    if status in {400, 403}:  # chat not found, bot blocked or kicked, text too long
        return DeliveryFailed.permanent(reason)
    return DeliveryFailed.transient(reason)
