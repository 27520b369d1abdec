"""How much text each channel carries, and how an SMS is split into segments."""

from __future__ import annotations

from notification_service.domain.model import Channel

# Twilio refuses bodies over 1,600 characters; Telegram's sendMessage over 4,096; email is bounded only
# by the API's own message limit.
MAX_LENGTH: dict[Channel, int] = {Channel.SMS: 1_600, Channel.TELEGRAM: 4_096, Channel.EMAIL: 100_000}

_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = set("^{}\\[~]|€\f")  # two septets each


def fits(channel: Channel, body: str) -> bool:
    return len(body) <= MAX_LENGTH[channel]


def too_long_reason(channel: Channel, body: str) -> str:
    return f"message is {len(body)} characters; {channel.value} takes at most {MAX_LENGTH[channel]}"


def sms_segments(body: str) -> int:
    """GSM-7 texts take 160 characters in one segment (153 each when split); anything else is UCS-2:
    70 (67 when split)."""
    if set(body) <= _GSM7 | _GSM7_EXTENSION:
        single, multi = 160, 153
        units = len(body) + sum(1 for c in body if c in _GSM7_EXTENSION)  # escape + character
    else:
        single, multi = 70, 67
        units = len(body)
    return 1 if units <= single else -(-units // multi)
