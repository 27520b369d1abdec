"""The API's request and response bodies, and how validation failures become error bodies."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from notification_service.domain.model import Attempt, Channel, FailureKind, Notification, Outcome, Status
from notification_service.domain.recipient import Recipient
from notification_service.http.errors import field_errors, validation_error
from notification_service.http.schemas import (
    MAX_MESSAGE_LENGTH,
    MAX_METADATA_BYTES,
    MAX_SUBJECT_LENGTH,
    ErrorBody,
    FieldError,
    NotificationRequest,
    NotificationView,
    RecipientAddresses,
)
from pydantic import ValidationError

from tests.fakes import FakeClock

SEED: dict[str, Any] = {
    "recipient": "user@example.com",
    "message": "Hello from notification service!",
    "channels": ["email", "sms", "telegram"],
}


def body(**changes: Any) -> dict[str, Any]:
    return {**SEED, **changes}


def errors_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as caught:
        NotificationRequest.model_validate(data)
    return [dict(e) for e in caught.value.errors()]


def fields_of(data: dict[str, Any]) -> list[FieldError]:
    with pytest.raises(ValidationError) as caught:
        NotificationRequest.model_validate(data)
    return field_errors(caught.value.errors())


# --- NotificationRequest -----------------------------------------------------


def test_seed_body_validates() -> None:
    request = NotificationRequest.model_validate(SEED)

    assert request.recipient == RecipientAddresses(email="user@example.com")
    assert request.message == "Hello from notification service!"
    assert request.channels == [Channel.EMAIL, Channel.SMS, Channel.TELEGRAM]
    assert request.subject is None
    assert request.metadata is None


def test_seed_event_body_validates_as_json() -> None:
    events = Path(__file__).resolve().parents[2] / "events"
    event = json.loads((events / "api_post_notification.json").read_text())

    request = NotificationRequest.model_validate_json(event["body"])

    assert request.recipient.to_domain() == Recipient(email="user@example.com")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("user@example.com", RecipientAddresses(email="user@example.com")),
        ("+447911123456", RecipientAddresses(phone="+447911123456")),
        ("-1001234567890", RecipientAddresses(telegram_chat_id="-1001234567890")),
        ("@channelname", RecipientAddresses(telegram_chat_id="@channelname")),
    ],
)
def test_recipient_string_is_parsed_into_addresses(text: str, expected: RecipientAddresses) -> None:
    assert NotificationRequest.model_validate(body(recipient=text)).recipient == expected


def test_recipient_object_is_accepted() -> None:
    request = NotificationRequest.model_validate(
        body(recipient={"email": "user@example.com", "phone": "+447911123456"})
    )

    assert request.recipient.to_domain() == Recipient(email="user@example.com", phone="+447911123456")


def test_recipient_object_with_extra_key_is_rejected() -> None:
    errors = errors_of(body(recipient={"email": "user@example.com", "fax": "123"}))

    assert [(e["type"], e["loc"]) for e in errors] == [("extra_forbidden", ("recipient", "fax"))]


def test_recipient_object_needs_an_address() -> None:
    (error,) = fields_of(body(recipient={}))

    assert error == FieldError(
        field="recipient", reason="needs at least one of email, phone, telegram_chat_id"
    )


def test_recipient_object_with_bad_email_names_the_field() -> None:
    (error,) = fields_of(body(recipient={"email": "user@"}))

    assert error == FieldError(field="recipient.email", reason="not a valid email address")


def test_telegram_chat_id_accepts_an_int() -> None:
    request = NotificationRequest.model_validate(body(recipient={"telegram_chat_id": -1001234567890}))

    assert request.recipient.telegram_chat_id == "-1001234567890"


def test_telegram_chat_id_rejects_a_bool() -> None:
    (error,) = fields_of(body(recipient={"telegram_chat_id": True}))

    assert error == FieldError(field="recipient.telegram_chat_id", reason="must be a string or an integer")


def test_channels_default_to_email_sms_telegram() -> None:
    data = body()
    del data["channels"]

    assert NotificationRequest.model_validate(data).channels == [Channel.EMAIL, Channel.SMS, Channel.TELEGRAM]


def test_channels_keep_their_order() -> None:
    request = NotificationRequest.model_validate(body(channels=["telegram", "email"]))

    assert request.channels == [Channel.TELEGRAM, Channel.EMAIL]


def test_duplicate_channel_is_rejected_naming_it() -> None:
    (error,) = fields_of(body(channels=["email", "sms", "email"]))

    assert error.field == "channels"
    assert "'email'" in error.reason
    assert error.reason == "channel 'email' is listed twice"


def test_unknown_channel_is_rejected() -> None:
    errors = errors_of(body(channels=["email", "pigeon"]))

    assert [(e["type"], e["loc"]) for e in errors] == [("enum", ("channels", 1))]


def test_empty_channels_are_rejected() -> None:
    errors = errors_of(body(channels=[]))

    assert [(e["type"], e["loc"]) for e in errors] == [("too_short", ("channels",))]


def test_blank_message_is_rejected() -> None:
    (error,) = fields_of(body(message="   \n\t"))

    assert error == FieldError(field="message", reason="must not be blank")


def test_empty_message_is_rejected() -> None:
    errors = errors_of(body(message=""))

    assert [(e["type"], e["loc"]) for e in errors] == [("string_too_short", ("message",))]


def test_message_at_the_limit_is_accepted_and_over_it_rejected() -> None:
    assert NotificationRequest.model_validate(body(message="x" * MAX_MESSAGE_LENGTH)).message

    errors = errors_of(body(message="x" * (MAX_MESSAGE_LENGTH + 1)))

    assert MAX_MESSAGE_LENGTH == 10_000
    assert [(e["type"], e["loc"]) for e in errors] == [("string_too_long", ("message",))]


def test_metadata_over_4096_bytes_is_rejected() -> None:
    # GIVEN metadata whose compact JSON is one byte over the limit
    overhead = len(json.dumps({"k": ""}, separators=(",", ":")))
    at_limit = {"k": "v" * (MAX_METADATA_BYTES - overhead)}
    over = {"k": "v" * (MAX_METADATA_BYTES - overhead + 1)}

    # WHEN / THEN the limit itself is accepted and one more byte is not
    assert NotificationRequest.model_validate(body(metadata=at_limit)).metadata == at_limit
    (error,) = fields_of(body(metadata=over))
    assert error == FieldError(field="metadata", reason="must be at most 4096 bytes as JSON")


def test_subject_over_998_characters_is_rejected() -> None:
    assert NotificationRequest.model_validate(body(subject="s" * MAX_SUBJECT_LENGTH)).subject

    errors = errors_of(body(subject="s" * (MAX_SUBJECT_LENGTH + 1)))

    assert MAX_SUBJECT_LENGTH == 998
    assert [(e["type"], e["loc"]) for e in errors] == [("string_too_long", ("subject",))]


def test_unknown_top_level_field_is_rejected() -> None:
    (error,) = fields_of(body(priority="high"))

    assert error == FieldError(field="priority", reason="unknown field")


# --- NotificationView --------------------------------------------------------


def test_notification_view_round_trips_the_record() -> None:
    # GIVEN a record that failed over from email to SMS in round 2
    clock = FakeClock()
    created = clock()
    first = Attempt(
        1,
        Channel.EMAIL,
        Outcome.FAILED,
        created,
        created + timedelta(milliseconds=250),
        error="timeout",
        failure_kind=FailureKind.TRANSIENT,
    )
    second = Attempt(
        2,
        Channel.SMS,
        Outcome.SENT,
        created + timedelta(seconds=2),
        created + timedelta(seconds=3),
        provider_message_id="SM123",
    )
    notification = Notification(
        id="n-1",
        recipient=Recipient(email="user@example.com", phone="+447911123456"),
        message="Hello",
        channels=(Channel.EMAIL, Channel.SMS),
        correlation_id="corr-1",
        created_at=created,
        updated_at=created + timedelta(seconds=3),
        status=Status.SENT,
        subject="Hi",
        metadata={"order": 42},
        round=2,
        attempts=(first, second),
        channel_used=Channel.SMS,
        provider_message_id="SM123",
    )

    # WHEN it is viewed and serialised as the API does
    view = NotificationView.of(notification).model_dump(mode="json")

    # THEN every field is there, with ISO timestamps ending in Z
    assert view == {
        "id": "n-1",
        "status": "sent",
        "status_reason": None,
        "send_at": None,
        "routing": "fallback",
        "template": None,
        "template_version": None,
        "contents": None,
        "channel_used": "sms",
        "provider_message_id": "SM123",
        "recipient": {"email": "user@example.com", "phone": "+447911123456", "telegram_chat_id": None},
        "channels": ["email", "sms"],
        "subject": "Hi",
        "message": "Hello",
        "metadata": {"order": 42},
        "rounds": 2,
        "attempts": [
            {
                "round": 1,
                "channel": "email",
                "outcome": "failed",
                "error": "timeout",
                "failure_kind": "transient",
                "provider_message_id": None,
                "retry_after_seconds": None,
                "started_at": "2026-11-25T12:00:00.000Z",
                "finished_at": "2026-11-25T12:00:00.250Z",
                "duration_ms": 250.0,
            },
            {
                "round": 2,
                "channel": "sms",
                "outcome": "sent",
                "error": None,
                "failure_kind": None,
                "provider_message_id": "SM123",
                "retry_after_seconds": None,
                "started_at": "2026-11-25T12:00:02.000Z",
                "finished_at": "2026-11-25T12:00:03.000Z",
                "duration_ms": 1000.0,
            },
        ],
        "correlation_id": "corr-1",
        "next_attempt_at": None,
        "callback_url": None,
        "webhooks": [],
        "created_at": "2026-11-25T12:00:00.000Z",
        "updated_at": "2026-11-25T12:00:03.000Z",
    }


def test_notification_view_of_a_retrying_record_has_next_attempt_at() -> None:
    clock = FakeClock()
    notification = Notification(
        id="n-2",
        recipient=Recipient(telegram_chat_id="42"),
        message="Hello",
        channels=(Channel.TELEGRAM,),
        correlation_id="corr-2",
        created_at=clock(),
        updated_at=clock(),
        status=Status.RETRYING,
        round=1,
        next_attempt_at=clock() + timedelta(seconds=2),
    )

    view = NotificationView.of(notification)

    assert view.next_attempt_at == "2026-11-25T12:00:02.000Z"
    assert view.channel_used is None
    assert view.attempts == []
    assert view.status is Status.RETRYING


# --- field_errors / validation_error -----------------------------------------


def test_field_errors_name_the_recipient_and_strip_value_error_prefix() -> None:
    (error,) = fields_of(body(recipient="not-an-address"))

    assert error == FieldError(
        field="recipient",
        reason="not an email address, an E.164 phone number or a Telegram chat id",
    )


def test_field_errors_use_dotted_paths_for_list_items() -> None:
    (error,) = fields_of(body(channels=["email", "pigeon"]))

    assert error.field == "channels.1"
    assert error.reason == "input should be 'email', 'sms' or 'telegram'"


def test_field_errors_missing_field() -> None:
    data = body()
    del data["message"]

    assert fields_of(data) == [FieldError(field="message", reason="field required (or give `template`)")]


def test_field_errors_extra_field() -> None:
    assert fields_of(body(recipient={"email": "user@example.com", "fax": 1})) == [
        FieldError(field="recipient.fax", reason="unknown field")
    ]


def test_field_errors_report_every_problem() -> None:
    errors = fields_of({"recipient": "", "message": "", "channels": ["email", "email"]})

    assert [e.field for e in errors] == ["recipient", "channels", "message"]
    assert errors[0].reason == "must not be empty"


def test_field_errors_malformed_json_is_about_the_body() -> None:
    with pytest.raises(ValidationError) as caught:
        NotificationRequest.model_validate_json("{bad json")

    (error,) = field_errors(caught.value.errors())

    assert error.field == "body"
    assert error.reason.startswith("malformed JSON")
    assert len(error.reason) > len("malformed JSON: ")


def test_field_errors_json_invalid_without_context() -> None:
    (error,) = field_errors([{"type": "json_invalid", "loc": (), "msg": "Invalid JSON"}])

    assert error == FieldError(field="body", reason="malformed JSON: invalid JSON")


def test_field_errors_strip_a_leading_location_and_prefix_headers() -> None:
    errors = field_errors(
        [
            {"type": "missing", "loc": ("body", "message"), "msg": "Field required"},
            {"type": "string_too_long", "loc": ("header", "Idempotency-Key"), "msg": "String too long"},
            {"type": "assertion_error", "loc": ("query",), "msg": "Assertion failed, nope"},
        ]
    )

    assert errors == [
        FieldError(field="message", reason="field required"),
        FieldError(field="header.Idempotency-Key", reason="string too long"),
        FieldError(field="query", reason="nope"),
    ]


def test_validation_error_builds_an_error_body() -> None:
    details = [
        FieldError(field="recipient", reason="must not be empty"),
        FieldError(field="channels.1", reason="unknown channel"),
    ]

    answer = validation_error(details)

    assert answer == ErrorBody(
        error="validation_error",
        message="recipient: must not be empty; channels.1: unknown channel",
        details=details,
    )


def test_validation_error_without_details() -> None:
    answer = validation_error([])

    assert answer.error == "validation_error"
    assert answer.message == "invalid request"
    assert answer.details == []
