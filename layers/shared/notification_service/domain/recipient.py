"""Recipient addresses: parsing the API's string-or-object form, validation, masking for logs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from notification_service.domain.model import Channel

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
# a dot-atom local part (no leading, trailing or doubled dot) @ a domain of at least two labels
EMAIL_RE = re.compile(
    rf"^{_ATEXT}(?:\.{_ATEXT})*@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
E164_RE = re.compile(r"^\+[1-9]\d{6,14}$")
# A numeric chat id (groups and channels are negative) or a public @channelusername.
TELEGRAM_CHAT_RE = re.compile(r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$")
MAX_EMAIL_LENGTH = 254


class InvalidAddress(ValueError):
    """An address that is not valid for its channel; the message names the reason."""


def validate_email(value: str) -> str:
    value = value.strip()
    if len(value) > MAX_EMAIL_LENGTH or not EMAIL_RE.match(value):
        raise InvalidAddress("not a valid email address")
    return value


def validate_phone(value: str) -> str:
    value = value.strip()
    if not E164_RE.match(value):
        raise InvalidAddress("not an E.164 phone number (like +447911123456)")
    return value


def validate_telegram_chat_id(value: str | int) -> str:
    text = str(value).strip()
    if not TELEGRAM_CHAT_RE.match(text):
        raise InvalidAddress("not a Telegram chat id (a number, or @channelname)")
    return text


def validate_address(channel: Channel, value: str) -> str:
    """The address checked for its channel, before any provider call."""
    validate = {"email": validate_email, "sms": validate_phone, "telegram": validate_telegram_chat_id}
    return validate[channel.value](value)


@dataclass(frozen=True)
class Recipient:
    """Where one person can be reached, per channel. A channel without an address is skipped."""

    email: str | None = None
    phone: str | None = None
    telegram_chat_id: str | None = None

    def __post_init__(self) -> None:
        if not (self.email or self.phone or self.telegram_chat_id):
            raise InvalidAddress("needs at least one of email, phone, telegram_chat_id")

    @classmethod
    def parse(cls, text: str) -> Recipient:
        """The seed's single-string form: an email address, an E.164 number or a Telegram chat id."""
        value = text.strip()
        if not value:
            raise InvalidAddress("must not be empty")
        if "@" in value and not value.startswith("@"):
            return cls(email=validate_email(value))
        if value.startswith("+"):
            return cls(phone=validate_phone(value))
        try:
            return cls(telegram_chat_id=validate_telegram_chat_id(value))
        except InvalidAddress:
            raise InvalidAddress(
                "not an email address, an E.164 phone number or a Telegram chat id"
            ) from None

    def addresses(self) -> tuple[str, ...]:
        """Each address, named by its kind (what a per-recipient rate limit counts)."""
        named = (("email", self.email), ("phone", self.phone), ("telegram", self.telegram_chat_id))
        return tuple(f"{kind}:{value}" for kind, value in named if value)

    def address_for(self, channel: Channel) -> str | None:
        return {"email": self.email, "sms": self.phone, "telegram": self.telegram_chat_id}[channel.value]

    def masked(self) -> dict[str, str]:
        """The addresses as they may appear in a log line."""
        out = {}
        if self.email:
            out["email"] = mask_email(self.email)
        if self.phone:
            out["phone"] = mask_phone(self.phone)
        if self.telegram_chat_id:
            out["telegram_chat_id"] = mask_chat_id(self.telegram_chat_id)
        return out


def mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_phone(value: str) -> str:
    if len(value) <= 7:
        return value[:2] + "*" * (len(value) - 2)
    return value[:5] + "*" * (len(value) - 8) + value[-3:]


def mask_chat_id(value: str) -> str:
    if len(value) <= 4:
        return "*" * len(value)
    return value[:2] + "*" * (len(value) - 4) + value[-2:]


def mask_address(value: str) -> str:
    if "@" in value and not value.startswith("@"):
        return mask_email(value)
    if value.startswith("+"):
        return mask_phone(value)
    return mask_chat_id(value)
