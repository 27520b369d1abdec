"""Channel limits, provider classification and message building, settings and the provider registry:
pure functions and constructors only, no network."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import aiosmtplib
import pytest
from notification_service.domain.channel_limits import MAX_LENGTH, fits, sms_segments, too_long_reason
from notification_service.domain.delivery import Delivered, DeliveryFailed, OutgoingMessage
from notification_service.domain.fallback import RetryVerdict, run_round, verdict
from notification_service.domain.model import Attempt, Channel, FailureKind, Notification, Outcome
from notification_service.domain.recipient import Recipient
from notification_service.domain.retry_policy import RetryPolicy
from notification_service.errors import ConfigurationError
from notification_service.http.schemas import NotificationRequest
from notification_service.http.twilio_callback import callback_url_for
from notification_service.providers import email_smtp, sms_twilio, telegram_bot
from notification_service.providers.email_smtp import SmtpEmailProvider, default_subject
from notification_service.providers.mock import MockProvider
from notification_service.providers.per_loop import PerLoop
from notification_service.providers.registry import build_providers, configured_channels
from notification_service.providers.sms_twilio import TwilioSmsProvider
from notification_service.providers.telegram_bot import TelegramBotProvider
from notification_service.settings import Settings, load_settings
from pydantic import ValidationError
from twilio.http import AsyncHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client as TwilioClient

from tests.fakes import FakeClock, FakeProvider

POLICY = RetryPolicy(max_rounds=3, backoff_base=2)
EVERYONE = Recipient(email="user@example.com", phone="+447911123456", telegram_chat_id="123456789")

# Every variable a test here may depend on: removed so the machine's environment cannot leak in.
PROVIDER_VARIABLES = (
    "TABLE_NAME",
    "QUEUE_URL",
    "DISPATCH_LEASE_SECONDS",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_USER",
    "SMTP_PASSWORD",
    "SMTP_FROM",
    "SMTP_TLS",
    "SMTP_CA_FILE",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_FROM_NUMBER",
    "TWILIO_MESSAGING_SERVICE_SID",
    "TWILIO_STATUS_CALLBACK_BASE",
    "TELEGRAM_BOT_TOKEN",
    "MOCK_FAIL_CHANNELS",
    "MOCK_LATENCY_MS",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Only the two required variables set; nothing about providers."""
    for name in PROVIDER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("TABLE_NAME", "notifications")
    monkeypatch.setenv("QUEUE_URL", "http://localhost/queue/delivery")
    return monkeypatch


def outgoing(
    channel: Channel = Channel.EMAIL,
    address: str = "user@example.com",
    body: str = "Hello from notification service!",
    subject: str | None = None,
) -> OutgoingMessage:
    return OutgoingMessage(
        notification_id="n-1",
        channel=channel,
        address=address,
        body=body,
        subject=subject,
        correlation_id="corr-1",
    )


def notification(message: str, channels: tuple[Channel, ...], clock: FakeClock) -> Notification:
    return Notification(
        id="n-1",
        recipient=EVERYONE,
        message=message,
        channels=channels,
        correlation_id="corr-1",
        created_at=clock(),
        updated_at=clock(),
    )


# --- channel limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "limit"),
    [(Channel.SMS, 1_600), (Channel.TELEGRAM, 4_096)],
)
def test_fits_up_to_the_channel_limit_and_not_one_more(channel: Channel, limit: int) -> None:
    assert MAX_LENGTH[channel] == limit
    assert fits(channel, "x" * limit)
    assert not fits(channel, "x" * (limit + 1))


@pytest.mark.parametrize(
    ("channel", "length", "expected"),
    [
        (Channel.SMS, 1_601, "message is 1601 characters; sms takes at most 1600"),
        (Channel.TELEGRAM, 4_097, "message is 4097 characters; telegram takes at most 4096"),
    ],
)
def test_too_long_reason_names_length_channel_and_limit(channel: Channel, length: int, expected: str) -> None:
    assert too_long_reason(channel, "x" * length) == expected


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3)],
)
def test_gsm7_text_segments(length: int, segments: int) -> None:
    assert sms_segments("a" * length) == segments


@pytest.mark.parametrize(("length", "segments"), [(70, 1), (71, 2), (134, 2), (135, 3)])
def test_ucs2_text_segments(length: int, segments: int) -> None:
    # one character outside GSM-7 makes the whole text UCS-2
    text = "✓" + "a" * (length - 1)

    assert len(text) == length
    assert sms_segments(text) == segments


def test_gsm7_extension_characters_take_two_septets() -> None:
    assert sms_segments("€" * 100) == 2


# --- run_round and verdict ---------------------------------------------------------------------------


def test_message_too_long_for_sms_fails_it_permanently_without_a_send_and_email_delivers() -> None:
    # GIVEN a 2000-character message for sms then email
    clock = FakeClock()
    providers = {channel: FakeProvider(channel) for channel in Channel}

    async def send(message: OutgoingMessage, _so_far: Sequence[Attempt]) -> Delivered | DeliveryFailed:
        return await providers[message.channel].send(message)

    n = notification("x" * 2_000, (Channel.SMS, Channel.EMAIL), clock)

    # WHEN round 1 runs
    attempts = asyncio.run(run_round(n, 1, send, clock))

    # THEN sms failed permanently naming the limit, its provider was never asked, and email delivered
    sms, email = attempts
    assert sms.channel is Channel.SMS
    assert sms.outcome is Outcome.FAILED
    assert sms.failure_kind is FailureKind.PERMANENT
    assert sms.error == "message is 2000 characters; sms takes at most 1600"
    assert providers[Channel.SMS].sent == []
    assert email.channel is Channel.EMAIL
    assert email.outcome is Outcome.SENT
    assert email.provider_message_id == "fake-email-1"
    assert len(providers[Channel.EMAIL].sent) == 1


def failed_round(clock: FakeClock, retry_after: int | None) -> tuple[Notification, list[Attempt]]:
    n = notification("hi", (Channel.EMAIL,), clock)
    attempt = Attempt(
        1,
        Channel.EMAIL,
        Outcome.FAILED,
        clock(),
        clock(),
        error="429",
        failure_kind=FailureKind.TRANSIENT,
        retry_after_seconds=retry_after,
    )
    return n, [attempt]


@pytest.mark.parametrize(
    ("retry_after", "delay"),
    [(None, 2), (1, 2), (10, 10), (900, 900), (5_000, 900)],
)
def test_verdict_waits_at_least_what_the_provider_asked_capped_at_900(
    retry_after: int | None, delay: int
) -> None:
    # GIVEN round 1 failed with a provider asking to wait `retry_after` seconds (backoff would be 2)
    n, attempts = failed_round(FakeClock(), retry_after)

    # WHEN / THEN the next round waits the longer of both, never beyond SQS's 900 s
    assert verdict(n, 1, attempts, POLICY) == RetryVerdict(delay)


# --- NotificationRequest -----------------------------------------------------------------------------


def request(**changes: Any) -> dict[str, Any]:
    return {"recipient": "user@example.com", "message": "hi", **changes}


def errors_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as caught:
        NotificationRequest.model_validate(data)
    return [dict(e) for e in caught.value.errors()]


def test_message_longer_than_every_requested_channel_is_rejected_on_message() -> None:
    errors = errors_of(request(message="x" * 2_000, channels=["sms"]))

    assert [e["loc"] for e in errors] == [("message",)]
    assert "1600" in errors[0]["msg"]
    assert "sms" in errors[0]["msg"]


def test_message_that_fits_one_requested_channel_is_accepted() -> None:
    accepted = NotificationRequest.model_validate(request(message="x" * 2_000, channels=["sms", "email"]))

    assert accepted.channels == [Channel.SMS, Channel.EMAIL]
    assert accepted.message is not None and len(accepted.message) == 2_000


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("metadata", "words"),
    [
        ({"x": float("nan")}, "finite"),
        ({"x": float("inf")}, "finite"),
        ({"x": [float("-inf")]}, "finite"),
        (nested(20), "nested deeper"),
        ({"x": 10**38}, "38 digits"),
        ({"x": -(10**38)}, "38 digits"),
        ({"x": 1e-200}, "out of range"),
        ({"x": 1e126}, "out of range"),
    ],
)
def test_metadata_dynamodb_cannot_store_is_rejected(metadata: dict[str, Any], words: str) -> None:
    errors = errors_of(request(metadata=metadata))

    assert [e["loc"] for e in errors] == [("metadata",)]
    assert words in errors[0]["msg"]


def test_ordinary_metadata_is_accepted_as_given() -> None:
    metadata = {
        "order": 1234,
        "total": 19.99,
        "zero": 0.0,
        "big": 10**38 - 1,
        "flags": [True, False, None],
        "customer": {"tier": "gold", "tags": ["a", "b"]},
        "deep": nested(14),  # its leaf is at depth 16, the limit
    }

    accepted = NotificationRequest.model_validate(request(metadata=metadata))

    assert accepted.metadata == metadata


# --- settings ----------------------------------------------------------------------------------------


def test_plain_smtp_with_credentials_is_rejected(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="clear text"):
        Settings(table_name="t", queue_url="q", smtp_tls="none", smtp_user="u")


def test_plain_smtp_with_credentials_from_the_environment_names_smtp_tls(env: pytest.MonkeyPatch) -> None:
    env.setenv("SMTP_TLS", "none")
    env.setenv("SMTP_USER", "u")

    with pytest.raises(ConfigurationError, match="SMTP_TLS"):
        load_settings()


def test_plain_smtp_without_credentials_is_allowed(env: pytest.MonkeyPatch) -> None:
    env.setenv("SMTP_TLS", "none")

    assert load_settings().smtp_tls_mode == "none"


def test_twilio_without_a_sender_names_twilio_from_number(env: pytest.MonkeyPatch) -> None:
    env.setenv("TWILIO_ACCOUNT_SID", "AC123")

    with pytest.raises(ConfigurationError, match="TWILIO_FROM_NUMBER"):
        load_settings()


@pytest.mark.parametrize("sender", ["TWILIO_FROM_NUMBER", "TWILIO_MESSAGING_SERVICE_SID"])
def test_twilio_with_either_sender_is_accepted(env: pytest.MonkeyPatch, sender: str) -> None:
    env.setenv("TWILIO_ACCOUNT_SID", "AC123")
    env.setenv(sender, "+15005550006")

    assert load_settings().twilio_account_sid == "AC123"


@pytest.mark.parametrize(
    ("port", "tls", "mode"),
    [(465, None, "ssl"), (587, None, "starttls"), (25, None, "starttls"), (465, "none", "none")],
)
def test_smtp_tls_mode_follows_the_port_unless_given(
    env: pytest.MonkeyPatch, port: int, tls: str | None, mode: str
) -> None:
    env.setenv("SMTP_PORT", str(port))
    if tls is not None:
        env.setenv("SMTP_TLS", tls)

    assert load_settings().smtp_tls_mode == mode


@pytest.mark.parametrize(("value", "expected"), [("", None), ("  ", None), (" SSL ", "ssl")])
def test_smtp_tls_is_normalised(env: pytest.MonkeyPatch, value: str, expected: str | None) -> None:
    env.setenv("SMTP_TLS", value)

    assert load_settings().smtp_tls == expected


def test_uncertain_sends_is_skip_or_resend(env: pytest.MonkeyPatch) -> None:
    assert load_settings().uncertain_sends == "skip"
    env.setenv("UNCERTAIN_SENDS", "resend")
    assert load_settings().uncertain_sends == "resend"
    env.setenv("UNCERTAIN_SENDS", "maybe")
    with pytest.raises(ConfigurationError, match="UNCERTAIN_SENDS"):
        load_settings()


def test_unknown_smtp_tls_names_the_variable(env: pytest.MonkeyPatch) -> None:
    env.setenv("SMTP_TLS", "tls1.3")

    with pytest.raises(ConfigurationError, match="SMTP_TLS"):
        load_settings()


@pytest.mark.parametrize(
    ("value", "timeout", "ok"),
    [("4", "1", False), ("12", "10", False), ("13", "10", True), ("5", "1", True), ("900", "10", True)],
)
def test_dispatch_lease_is_longer_than_one_send(
    env: pytest.MonkeyPatch, value: str, timeout: str, ok: bool
) -> None:
    env.setenv("DISPATCH_LEASE_SECONDS", value)
    for provider in ("SMTP", "TWILIO", "TELEGRAM"):
        env.setenv(f"{provider}_TIMEOUT_SECONDS", timeout)

    if ok:
        assert load_settings().dispatch_lease_seconds == int(value)
    else:
        with pytest.raises(ConfigurationError, match="DISPATCH_LEASE_SECONDS"):
            load_settings()


# --- registry ----------------------------------------------------------------------------------------


def settings(**values: Any) -> Settings:
    return Settings(table_name="t", queue_url="q", **values)


def test_without_credentials_every_channel_is_mocked(env: pytest.MonkeyPatch) -> None:
    configured = settings()

    providers = build_providers(configured)

    assert configured_channels(configured) == frozenset()
    assert set(providers) == set(Channel)
    assert all(isinstance(p, MockProvider) for p in providers.values())
    assert all(p.channel is channel for channel, p in providers.items())


def test_smtp_host_makes_email_real_and_leaves_the_others_mocked(env: pytest.MonkeyPatch) -> None:
    configured = settings(smtp_host="smtp.example.com", smtp_port=465)

    providers = build_providers(configured)

    assert configured_channels(configured) == frozenset({Channel.EMAIL})
    assert isinstance(providers[Channel.EMAIL], SmtpEmailProvider)
    assert isinstance(providers[Channel.SMS], MockProvider)
    assert isinstance(providers[Channel.TELEGRAM], MockProvider)


def test_twilio_credentials_make_sms_real(env: pytest.MonkeyPatch) -> None:
    configured = settings(
        twilio_account_sid="AC123", twilio_auth_token="secret", twilio_from_number="+15005550006"
    )

    providers = build_providers(configured)

    assert configured_channels(configured) == frozenset({Channel.SMS})
    assert isinstance(providers[Channel.SMS], TwilioSmsProvider)
    assert isinstance(providers[Channel.EMAIL], MockProvider)
    assert isinstance(providers[Channel.TELEGRAM], MockProvider)


def test_telegram_token_makes_telegram_real(env: pytest.MonkeyPatch) -> None:
    configured = settings(telegram_bot_token="123:abc")

    providers = build_providers(configured)

    assert configured_channels(configured) == frozenset({Channel.TELEGRAM})
    assert isinstance(providers[Channel.TELEGRAM], TelegramBotProvider)
    assert isinstance(providers[Channel.EMAIL], MockProvider)
    assert isinstance(providers[Channel.SMS], MockProvider)


def test_every_credential_makes_every_channel_real(env: pytest.MonkeyPatch) -> None:
    configured = settings(
        smtp_host="smtp.example.com",
        twilio_account_sid="AC123",
        twilio_messaging_service_sid="MG123",
        telegram_bot_token="123:abc",
    )

    providers = build_providers(configured)

    assert configured_channels(configured) == frozenset(Channel)
    assert not any(isinstance(p, MockProvider) for p in providers.values())


# --- classification: SMTP ----------------------------------------------------------------------------


def assert_failure(failure: DeliveryFailed, kind: FailureKind, configuration_error: bool = False) -> None:
    assert failure.kind is kind, failure
    assert failure.configuration_error is configuration_error, failure
    assert failure.reason


@pytest.mark.parametrize(
    ("exc", "kind", "configuration_error"),
    [
        (aiosmtplib.SMTPAuthenticationError(535, "x"), FailureKind.TRANSIENT, True),
        (
            aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "no", "a@b")]),
            FailureKind.PERMANENT,
            False,
        ),
        (
            aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(450, "later", "a@b")]),
            FailureKind.TRANSIENT,
            False,
        ),
        (
            aiosmtplib.SMTPRecipientsRefused(
                [
                    aiosmtplib.SMTPRecipientRefused(550, "no", "a@b"),
                    aiosmtplib.SMTPRecipientRefused(450, "later", "c@d"),
                ]
            ),
            FailureKind.TRANSIENT,
            False,
        ),
        (aiosmtplib.SMTPResponseException(554, "x"), FailureKind.PERMANENT, False),
        (aiosmtplib.SMTPResponseException(421, "x"), FailureKind.TRANSIENT, False),
        (aiosmtplib.SMTPSenderRefused(553, "x", "s"), FailureKind.TRANSIENT, True),
        (aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported"), FailureKind.TRANSIENT, True),
        (
            aiosmtplib.SMTPException("STARTTLS extension not supported by server"),
            FailureKind.TRANSIENT,
            True,
        ),
        (
            aiosmtplib.SMTPException("SMTP STARTTLS extension not supported by server."),
            FailureKind.TRANSIENT,
            True,
        ),
        (aiosmtplib.SMTPServerDisconnected("gone"), FailureKind.TRANSIENT, False),
        (aiosmtplib.SMTPReadTimeoutError("slow"), FailureKind.TRANSIENT, False),
    ],
)
def test_smtp_classify(exc: aiosmtplib.SMTPException, kind: FailureKind, configuration_error: bool) -> None:
    assert_failure(email_smtp.classify(exc), kind, configuration_error)


def test_smtp_classify_reasons_carry_the_codes() -> None:
    refused = aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "no", "a@b")])

    assert email_smtp.classify(aiosmtplib.SMTPAuthenticationError(535, "x")).reason == (
        "SMTP authentication failed (535)"
    )
    assert email_smtp.classify(refused).reason == "recipient refused (550)"
    assert (
        email_smtp.classify(aiosmtplib.SMTPResponseException(421, "x")).reason == "SMTP server answered 421"
    )


def test_smtp_auth_not_offered_is_a_configuration_error() -> None:
    failure = email_smtp.classify(
        aiosmtplib.SMTPException("The SMTP AUTH extension is not supported by this server.")
    )

    assert failure.configuration_error


# --- classification: Twilio and Telegram -------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "kind", "configuration_error"),
    [
        (400, 21211, FailureKind.PERMANENT, False),
        (400, 21614, FailureKind.PERMANENT, False),
        (400, 21610, FailureKind.PERMANENT, False),
        (429, 20429, FailureKind.TRANSIENT, False),
        (429, None, FailureKind.TRANSIENT, False),
        (503, None, FailureKind.TRANSIENT, False),
        (500, 20500, FailureKind.TRANSIENT, False),
        (401, 20003, FailureKind.TRANSIENT, True),
        (401, None, FailureKind.TRANSIENT, True),
        (400, 21212, FailureKind.TRANSIENT, True),
        (400, 99999, FailureKind.PERMANENT, False),
    ],
)
def test_twilio_classify(status: int, code: int | None, kind: FailureKind, configuration_error: bool) -> None:
    assert_failure(sms_twilio.classify(status, code), kind, configuration_error)


def test_twilio_reason_names_status_and_code() -> None:
    assert sms_twilio.classify(400, 21211).reason == "Twilio answered 400 (error 21211)"
    assert sms_twilio.classify(503, None).reason == "Twilio answered 503"


# --- Twilio: the form the client posts (status callbacks) ---------------------------------------------


class RecordingTwilioHttp(AsyncHttpClient):  # type: ignore[misc]  # twilio is untyped
    """The twilio client's transport, recording the form of each request and answering a queued message."""

    def __init__(self) -> None:
        super().__init__(logging.getLogger("recording-twilio"), is_async=True)
        self.forms: list[dict[str, object]] = []

    async def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - twilio's transport interface
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        self.forms.append(dict(data or {}))
        return TwilioResponse(201, json.dumps({"sid": "SM" + "f" * 32, "status": "queued"}))


def twilio_form(status_callback_base: str) -> dict[str, object]:
    provider = TwilioSmsProvider(
        "AC123", "secret", from_number="+15005550006", status_callback_base=status_callback_base
    )
    transport = RecordingTwilioHttp()
    provider._client = PerLoop(lambda: TwilioClient("AC123", "secret", http_client=transport))

    outcome = asyncio.run(provider.send(outgoing(Channel.SMS, "+447911123456")))

    assert outcome == Delivered("SM" + "f" * 32)
    (form,) = transport.forms
    return form


def test_twilio_asks_for_status_callbacks_when_a_base_is_configured() -> None:
    form = twilio_form("https://abc.execute-api.us-east-1.amazonaws.com/Prod")

    assert form["StatusCallback"] == (
        "https://abc.execute-api.us-east-1.amazonaws.com/Prod/api/v1/providers/twilio/status"
        "?notification_id=n-1"
    )
    assert form["StatusCallback"] == callback_url_for(
        "https://abc.execute-api.us-east-1.amazonaws.com/Prod", "n-1"
    )
    assert (form["To"], form["From"]) == ("+447911123456", "+15005550006")


def test_twilio_asks_for_no_status_callback_without_a_base() -> None:
    assert "StatusCallback" not in twilio_form("")


def test_the_registry_hands_the_callback_base_to_twilio(env: pytest.MonkeyPatch) -> None:
    configured = settings(
        twilio_account_sid="AC123",
        twilio_from_number="+15005550006",
        twilio_status_callback_base=" https://api.example.com/notify/ ",
    )

    provider = build_providers(configured)[Channel.SMS]

    assert configured.twilio_status_callback_base == "https://api.example.com/notify"
    assert isinstance(provider, TwilioSmsProvider)
    assert provider._status_callback_base == "https://api.example.com/notify"


def test_a_callback_base_that_is_not_a_url_names_the_variable(env: pytest.MonkeyPatch) -> None:
    env.setenv("TWILIO_STATUS_CALLBACK_BASE", "abc.execute-api.us-east-1.amazonaws.com/Prod")

    with pytest.raises(ConfigurationError, match=r"TWILIO_STATUS_CALLBACK_BASE: .*public base URL"):
        load_settings()


@pytest.mark.parametrize(
    ("status", "payload", "kind", "configuration_error"),
    [
        (400, {"description": "Bad Request: chat not found"}, FailureKind.PERMANENT, False),
        (403, {"description": "Forbidden: bot was blocked by the user"}, FailureKind.PERMANENT, False),
        (429, {"parameters": {"retry_after": 7}}, FailureKind.TRANSIENT, False),
        (401, {}, FailureKind.TRANSIENT, True),
        (404, {}, FailureKind.TRANSIENT, True),
        (502, {}, FailureKind.TRANSIENT, False),
    ],
)
def test_telegram_classify(
    status: int, payload: dict[str, Any], kind: FailureKind, configuration_error: bool
) -> None:
    assert_failure(telegram_bot.classify(status, payload), kind, configuration_error)


def test_telegram_429_carries_retry_after() -> None:
    failure = telegram_bot.classify(
        429, {"description": "Too Many Requests", "parameters": {"retry_after": 7}}
    )

    assert failure.kind is FailureKind.TRANSIENT
    assert failure.retry_after_seconds == 7


def test_telegram_429_without_retry_after_has_none() -> None:
    assert telegram_bot.classify(429, {}).retry_after_seconds is None
    assert telegram_bot.classify(429, {"parameters": {"retry_after": "soon"}}).retry_after_seconds is None


def test_telegram_reason_quotes_the_description_and_401_hides_it() -> None:
    assert telegram_bot.classify(400, {"description": "Bad Request: chat not found"}).reason == (
        "Telegram answered 400: Bad Request: chat not found"
    )
    assert telegram_bot.classify(502, {}).reason == "Telegram answered 502: HTTP 502"
    assert telegram_bot.classify(401, {"description": "Unauthorized"}).reason == (
        "Telegram rejected the bot token (401)"
    )


# --- SMTP message building ---------------------------------------------------------------------------


def smtp() -> SmtpEmailProvider:
    return SmtpEmailProvider("smtp.example.com", 587, "noreply@example.com")


def test_an_html_part_makes_a_multipart_alternative() -> None:
    message = OutgoingMessage(
        "n-1", Channel.EMAIL, "user@example.com", "plain", "Hi", "corr-1", html="<p>rich</p>"
    )

    mail = smtp().build(message)

    assert mail.get_content_type() == "multipart/alternative"
    plain, html = mail.iter_parts()
    assert (plain.get_content_type(), plain.get_content().strip()) == ("text/plain", "plain")
    assert (html.get_content_type(), html.get_content().strip()) == ("text/html", "<p>rich</p>")


def test_built_email_has_the_headers_and_a_utf8_body() -> None:
    # GIVEN a message with a subject and a non-ASCII body
    body = "Привет ✓\nsecond line"

    # WHEN the SMTP provider builds the email
    mail = smtp().build(outgoing(body=body, subject="Your order"))

    # THEN sender, recipient, subject, date and ids are set, and the body is UTF-8 text
    assert mail["From"] == "noreply@example.com"
    assert mail["To"] == "user@example.com"
    assert mail["Subject"] == "Your order"
    assert parsedate_to_datetime(str(mail["Date"])).tzinfo is not None
    message_id = str(mail["Message-ID"])
    assert message_id.startswith("<")
    assert message_id.endswith("@example.com>")
    assert "n-1" in message_id
    assert mail["X-Notification-ID"] == "n-1"
    assert mail["X-Correlation-ID"] == "corr-1"
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content_charset() == "utf-8"
    assert mail.get_content().rstrip("\n") == body


def test_built_email_without_subject_uses_the_first_line() -> None:
    mail = smtp().build(outgoing(body="\n  Your parcel shipped\nTracking: 123"))

    assert mail["Subject"] == "Your parcel shipped"


def test_default_subject_is_shortened_with_an_ellipsis_beyond_78_characters() -> None:
    exactly = "s" * 78
    longer = "s" * 100

    assert default_subject(exactly) == exactly
    assert default_subject(longer) == "s" * 77 + "…"
    assert len(default_subject(longer)) == 78
    assert smtp().build(outgoing(body=longer))["Subject"] == "s" * 77 + "…"


def test_default_subject_of_a_blank_body() -> None:
    assert default_subject("   \n ") == "Notification"


class RecordingSmtp:
    """Stands in for aiosmtplib.SMTP: records what would have gone out, and never opens a socket."""

    sent: list[EmailMessage]

    def __init__(self, **_options: Any) -> None:
        return None

    async def __aenter__(self) -> RecordingSmtp:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        return None

    async def send_message(self, message: EmailMessage) -> tuple[dict[str, Any], str]:
        self.sent.append(message)
        return {}, "250 OK"


@pytest.fixture
def recording_smtp(monkeypatch: pytest.MonkeyPatch) -> type[RecordingSmtp]:
    monkeypatch.setattr(RecordingSmtp, "sent", [], raising=False)
    monkeypatch.setattr(aiosmtplib, "SMTP", RecordingSmtp)
    return RecordingSmtp


def test_send_hands_the_built_email_to_smtp(recording_smtp: type[RecordingSmtp]) -> None:
    outcome = asyncio.run(smtp().send(outgoing(subject="Hi")))

    (mail,) = recording_smtp.sent
    assert outcome == Delivered(str(mail["Message-ID"]))
    assert mail["Subject"] == "Hi"


def test_subject_with_a_line_break_does_not_make_send_raise(recording_smtp: type[RecordingSmtp]) -> None:
    # GIVEN a subject with a line break: the API refuses it
    subject = "Hello\nBcc: someone@example.com"
    with pytest.raises(ValidationError, match="single line"):
        NotificationRequest.model_validate(request(subject=subject))

    # WHEN the SMTP provider is handed one anyway
    outcome = asyncio.run(smtp().send(outgoing(subject=subject)))

    # THEN it answers a permanent failure (no exception), and no header is injected
    assert isinstance(outcome, DeliveryFailed)
    assert outcome.kind is FailureKind.PERMANENT
    assert all(mail["Bcc"] is None for mail in recording_smtp.sent)


@pytest.mark.parametrize("address", ["a..b@example.com", ".a@example.com", "a.@example.com"])
def test_dotted_local_part_does_not_make_send_raise(
    recording_smtp: type[RecordingSmtp], address: str
) -> None:
    # GIVEN an address with a misplaced dot: the API refuses it
    with pytest.raises(ValidationError, match="not a valid email address"):
        NotificationRequest.model_validate(request(recipient=address))

    # WHEN / THEN the SMTP provider handed one anyway answers a permanent failure instead of raising
    outcome = asyncio.run(smtp().send(outgoing(address=address)))
    assert isinstance(outcome, DeliveryFailed)
    assert outcome.kind is FailureKind.PERMANENT


# --- mock provider -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "address"),
    [
        (Channel.EMAIL, "not-an-email"),
        (Channel.SMS, "07911123456"),
        (Channel.TELEGRAM, "not a chat"),
    ],
)
def test_mock_provider_refuses_an_invalid_address_permanently(channel: Channel, address: str) -> None:
    outcome = asyncio.run(MockProvider(channel).send(outgoing(channel=channel, address=address)))

    assert isinstance(outcome, DeliveryFailed)
    assert outcome.kind is FailureKind.PERMANENT
    assert outcome.reason.startswith(f"invalid {channel.value} address")


def test_failing_mock_still_refuses_an_invalid_address_permanently() -> None:
    outcome = asyncio.run(MockProvider(Channel.SMS, fail=True).send(outgoing(Channel.SMS, "nope")))

    assert isinstance(outcome, DeliveryFailed)
    assert outcome.kind is FailureKind.PERMANENT
