"""Recipient parsing, validation and masking."""

from __future__ import annotations

import pytest
from notification_service.domain.model import Channel
from notification_service.domain.recipient import (
    InvalidAddress,
    Recipient,
    mask_address,
    mask_chat_id,
    mask_email,
    mask_phone,
)


def test_parse_email() -> None:
    assert Recipient.parse("user@example.com") == Recipient(email="user@example.com")


def test_parse_strips_surrounding_whitespace() -> None:
    assert Recipient.parse("  user@example.com \n") == Recipient(email="user@example.com")


def test_parse_e164_phone() -> None:
    assert Recipient.parse("+447911123456") == Recipient(phone="+447911123456")


@pytest.mark.parametrize("chat_id", ["123456789", "-1001234567890", "@channelname"])
def test_parse_telegram_chat_id(chat_id: str) -> None:
    parsed = Recipient.parse(chat_id)

    assert parsed == Recipient(telegram_chat_id=chat_id)
    assert parsed.email is None
    assert parsed.phone is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("not-an-address", "not an email address, an E.164 phone number or a Telegram chat id"),
        ("+123", "not an E.164 phone number"),
        ("+0447911123456", "not an E.164 phone number"),
        ("user@", "not a valid email address"),
        ("@abc", "not an email address, an E.164 phone number or a Telegram chat id"),
    ],
)
def test_parse_rejects_invalid_strings_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidAddress, match=reason):
        Recipient.parse(text)


def test_parse_rejects_overlong_email() -> None:
    # GIVEN an address that matches the email pattern but is longer than 254 characters
    local = "a" * 64
    domain = ".".join(["b" * 60] * 4) + ".com"
    address = f"{local}@{domain}"
    assert len(address) > 254

    # WHEN / THEN it is rejected as an email address
    with pytest.raises(InvalidAddress, match="not a valid email address"):
        Recipient.parse(address)


def test_email_of_exactly_254_characters_is_accepted() -> None:
    address = "a" * 64 + "@" + "c" * 63 + "." + "c" * 63 + "." + "c" * 57 + ".com"
    assert len(address) == 254

    assert Recipient.parse(address).email == address


def test_invalid_address_is_a_value_error() -> None:
    # pydantic turns ValueErrors raised by validators into validation errors: the subclassing matters
    assert issubclass(InvalidAddress, ValueError)


def test_recipient_without_any_address_is_rejected() -> None:
    with pytest.raises(InvalidAddress, match="needs at least one of email, phone, telegram_chat_id"):
        Recipient()


def test_recipient_with_only_empty_strings_is_rejected() -> None:
    with pytest.raises(InvalidAddress):
        Recipient(email="", phone="", telegram_chat_id="")


def test_address_for_each_channel() -> None:
    recipient = Recipient(email="user@example.com", phone="+447911123456", telegram_chat_id="42")

    assert recipient.address_for(Channel.EMAIL) == "user@example.com"
    assert recipient.address_for(Channel.SMS) == "+447911123456"
    assert recipient.address_for(Channel.TELEGRAM) == "42"


def test_address_for_missing_channel_is_none() -> None:
    recipient = Recipient(email="user@example.com")

    assert recipient.address_for(Channel.SMS) is None
    assert recipient.address_for(Channel.TELEGRAM) is None


def test_mask_email_keeps_first_letter_and_domain() -> None:
    assert mask_email("user@example.com") == "u***@example.com"


def test_mask_phone_keeps_first_five_and_last_three() -> None:
    masked = mask_phone("+447911123456")

    assert masked == "+4479*****456"
    assert len(masked) == len("+447911123456")


def test_mask_phone_short_value_keeps_only_two_characters() -> None:
    assert mask_phone("+12345") == "+1****"


@pytest.mark.parametrize(
    ("chat_id", "masked"),
    [
        ("123456789", "12*****89"),
        ("-1001234567890", "-1**********90"),
        ("@channelname", "@c********me"),
        ("1234", "****"),
        ("12", "**"),
    ],
)
def test_mask_chat_id(chat_id: str, masked: str) -> None:
    assert mask_chat_id(chat_id) == masked


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("user@example.com", "u***@example.com"),
        ("+447911123456", "+4479*****456"),
        ("123456789", "12*****89"),
        ("@channelname", "@c********me"),
    ],
)
def test_mask_address_dispatches_on_the_kind_of_address(address: str, masked: str) -> None:
    assert mask_address(address) == masked


def test_masked_recipient_hides_every_address() -> None:
    recipient = Recipient(email="user@example.com", phone="+447911123456", telegram_chat_id="123456789")

    assert recipient.masked() == {
        "email": "u***@example.com",
        "phone": "+4479*****456",
        "telegram_chat_id": "12*****89",
    }


def test_masked_recipient_lists_only_present_addresses() -> None:
    assert Recipient(phone="+447911123456").masked() == {"phone": "+4479*****456"}
