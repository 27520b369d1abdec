"""Every provider, the mock included, through the same contract, against real local peers:
success, each transient and each permanent failure, a timeout, and bad credentials."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from notification_service.domain.delivery import Delivered, DeliveryFailed, OutgoingMessage, SendOutcome
from notification_service.domain.model import Channel, FailureKind
from notification_service.ports import Provider
from notification_service.providers.email_smtp import SmtpEmailProvider
from notification_service.providers.mock import MockProvider
from notification_service.providers.sms_twilio import TwilioSmsProvider
from notification_service.providers.telegram_bot import TelegramBotProvider

from infra.emulator import free_port
from infra.sinks import Inbox, SmtpSink, TelegramSink, TwilioSink
from tests.integration.peers import SilentServer, TestCertificate

TWILIO_SID = "AC" + "1" * 32
TWILIO_TOKEN = "contract-twilio-token"
TELEGRAM_TOKEN = "987654:contract-telegram-token-SECRET"
SMTP_PASSWORD = "contract-smtp-password-SECRET"
TIMEOUT = 0.5


@dataclass
class Peers:
    inbox: Inbox
    smtp: SmtpSink
    smtp_auth: SmtpSink
    certificate: TestCertificate
    twilio: TwilioSink
    telegram: TelegramSink
    silent: SilentServer
    closed_port: int


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    directory = tmp_path_factory.mktemp("peers")
    inbox = Inbox(directory / "inbox.jsonl")
    certificate = TestCertificate(directory)
    running = Peers(
        inbox=inbox,
        smtp=SmtpSink(inbox).start(),
        smtp_auth=SmtpSink(
            inbox, tls_context=certificate.server_context(), username="app", password=SMTP_PASSWORD
        ).start(),
        certificate=certificate,
        twilio=TwilioSink(inbox, TWILIO_SID, TWILIO_TOKEN).start(),
        telegram=TelegramSink(inbox, TELEGRAM_TOKEN).start(),
        silent=SilentServer(),
        closed_port=free_port(),
    )
    yield running
    for sink in (running.smtp, running.smtp_auth, running.twilio, running.telegram):
        sink.stop()
    running.silent.close()


# Each variant of a provider is built from the peers: "ok" talks to its sink with good credentials.
Factory = Callable[[Peers], Provider]


def smtp(variant: str) -> Factory:
    def build(p: Peers) -> Provider:
        if variant == "bad_credentials":
            return SmtpEmailProvider(
                "127.0.0.1",
                p.smtp_auth.port,
                "app@example.com",
                tls="starttls",
                username="app",
                password="wrong",
                ca_file=str(p.certificate.ca_file),
            )
        port = {"ok": p.smtp.port, "refused": p.closed_port, "timeout": p.silent.port}[variant]
        return SmtpEmailProvider("127.0.0.1", port, "app@example.com", tls="none", timeout_seconds=TIMEOUT)

    return build


def twilio(variant: str) -> Factory:
    def build(p: Peers) -> Provider:
        base = {
            "ok": p.twilio.base_url,
            "bad_credentials": p.twilio.base_url,
            "refused": f"http://127.0.0.1:{p.closed_port}",
            "timeout": f"http://127.0.0.1:{p.silent.port}",
        }[variant]
        token = "wrong" if variant == "bad_credentials" else TWILIO_TOKEN
        return TwilioSmsProvider(
            TWILIO_SID, token, from_number="+15005550006", api_base=base, timeout_seconds=TIMEOUT
        )

    return build


def telegram(variant: str) -> Factory:
    def build(p: Peers) -> Provider:
        base = {
            "ok": p.telegram.base_url,
            "bad_credentials": p.telegram.base_url,
            "refused": f"http://127.0.0.1:{p.closed_port}",
            "timeout": f"http://127.0.0.1:{p.silent.port}",
        }[variant]
        token = "111:wrong" if variant == "bad_credentials" else TELEGRAM_TOKEN
        return TelegramBotProvider(token, api_base=base, timeout_seconds=TIMEOUT)

    return build


def mock(variant: str) -> Factory:
    return lambda _p: MockProvider(Channel.EMAIL, fail=variant == "failing")


SENT, TRANSIENT, PERMANENT, MISCONFIGURED = "sent", "transient", "permanent", "misconfigured"
N_A = None
# provider, case -> (factory, address, expected); every provider answers every case of the contract.
CONTRACT: dict[str, dict[str, tuple[Factory, str, str | None]]] = {
    "mock": {
        "success": (mock("ok"), "user@example.com", SENT),
        "transient: injected failure": (mock("failing"), "user@example.com", TRANSIENT),
        "permanent: invalid address": (mock("ok"), "not-an-address", PERMANENT),
        "timeout": (mock("ok"), "", N_A),
        "bad credentials": (mock("ok"), "", N_A),
    },
    "smtp": {
        "success": (smtp("ok"), "user@example.com", SENT),
        "transient: recipient deferred (450)": (smtp("ok"), "tempfail@example.com", TRANSIENT),
        "transient: connection refused": (smtp("refused"), "user@example.com", TRANSIENT),
        "permanent: recipient refused (550)": (smtp("ok"), "reject@example.com", PERMANENT),
        "permanent: invalid address": (smtp("ok"), "not-an-address", PERMANENT),
        "timeout": (smtp("timeout"), "user@example.com", TRANSIENT),
        "bad credentials": (smtp("bad_credentials"), "user@example.com", MISCONFIGURED),
    },
    "twilio": {
        "success": (twilio("ok"), "+447911123456", SENT),
        "transient: rate limited (20429)": (twilio("ok"), "+447911120429", TRANSIENT),
        "transient: server error (20500)": (twilio("ok"), "+447911120500", TRANSIENT),
        "transient: connection refused": (twilio("refused"), "+447911123456", TRANSIENT),
        "permanent: invalid number (21211)": (twilio("ok"), "+447911120001", PERMANENT),
        "permanent: not a mobile (21614)": (twilio("ok"), "+447911120009", PERMANENT),
        "permanent: not E.164": (twilio("ok"), "07911 123456", PERMANENT),
        "timeout": (twilio("timeout"), "+447911123456", TRANSIENT),
        "bad credentials": (twilio("bad_credentials"), "+447911123456", MISCONFIGURED),
    },
    "telegram": {
        "success": (telegram("ok"), "123456789", SENT),
        "transient: rate limited (429)": (telegram("ok"), "429429", TRANSIENT),
        "transient: server error (500)": (telegram("ok"), "500500", TRANSIENT),
        "transient: connection refused": (telegram("refused"), "123456789", TRANSIENT),
        "permanent: chat not found (400)": (telegram("ok"), "400400", PERMANENT),
        "permanent: bot blocked (403)": (telegram("ok"), "403403", PERMANENT),
        "permanent: invalid chat id": (telegram("ok"), "not a chat", PERMANENT),
        "timeout": (telegram("timeout"), "123456789", TRANSIENT),
        "bad credentials": (telegram("bad_credentials"), "123456789", MISCONFIGURED),
    },
}
CHANNEL = {"mock": Channel.EMAIL, "smtp": Channel.EMAIL, "twilio": Channel.SMS, "telegram": Channel.TELEGRAM}


def send(provider: Provider, channel: Channel, address: str, body: str = "Contract ✓") -> SendOutcome:
    message = OutgoingMessage("n-contract", channel, address, body, "Contract subject", "cid-contract")
    return asyncio.run(provider.send(message))


@pytest.mark.parametrize(
    ("provider_name", "case"), [(name, case) for name, cases in CONTRACT.items() for case in cases]
)
def test_the_provider_contract(peers: Peers, provider_name: str, case: str) -> None:
    factory, address, expected = CONTRACT[provider_name][case]
    if expected is None:
        pytest.skip(f"{provider_name} has no {case} (it makes no network call)")
    # WHEN the provider sends to the address its case names
    outcome = send(factory(peers), CHANNEL[provider_name], address)
    # THEN it classifies the result as the contract says, without raising
    if expected == SENT:
        assert isinstance(outcome, Delivered)
        assert outcome.provider_message_id
        return
    assert isinstance(outcome, DeliveryFailed), outcome
    assert outcome.kind is (FailureKind.PERMANENT if expected == PERMANENT else FailureKind.TRANSIENT)
    assert outcome.configuration_error is (expected == MISCONFIGURED)
    assert outcome.reason
    # AND no secret ever reaches a failure reason (the Telegram token is part of the URL)
    for secret in (TELEGRAM_TOKEN, TWILIO_TOKEN, SMTP_PASSWORD, TELEGRAM_TOKEN.split(":")[1]):
        assert secret not in outcome.reason


def test_every_provider_has_every_case() -> None:
    cases = {name: {c.split(":")[0] for c in table} for name, table in CONTRACT.items()}
    for name, kinds in cases.items():
        assert {"success", "transient", "permanent", "timeout", "bad credentials"} <= kinds, name


def test_telegram_rate_limit_carries_retry_after(peers: Peers) -> None:
    outcome = send(telegram("ok")(peers), Channel.TELEGRAM, "429429")
    assert isinstance(outcome, DeliveryFailed)
    assert outcome.retry_after_seconds == 3


def test_a_mail_arrives_over_starttls_with_auth_as_a_proper_mime_message(peers: Peers) -> None:
    # GIVEN a relay that requires STARTTLS and AUTH, with a certificate from our test CA
    provider = SmtpEmailProvider(
        "127.0.0.1",
        peers.smtp_auth.port,
        "Service <app@example.com>",
        tls="starttls",
        username="app",
        password=SMTP_PASSWORD,
        ca_file=str(peers.certificate.ca_file),
    )
    # WHEN a UTF-8 notification is sent
    outcome = send(provider, Channel.EMAIL, "starttls-user@example.com", "Привет ✓ from the service")
    # THEN it arrives over TLS with subject, sender, recipient, date, Message-ID and the body
    assert isinstance(outcome, Delivered)
    mail = next(m for m in peers.inbox.of("email") if m["to"] == ["starttls-user@example.com"])
    assert mail["tls"] is True
    assert mail["subject"] == "Contract subject"
    assert mail["message_id"] == outcome.provider_message_id
    assert mail["body"] == "Привет ✓ from the service"
    assert mail["date"]
    assert mail["from"] == "app@example.com"


def test_implicit_tls_delivers(peers: Peers, tmp_path: Path) -> None:
    inbox = Inbox()
    sink = SmtpSink(inbox, tls_context=peers.certificate.server_context(), implicit_tls=True).start()
    try:
        provider = SmtpEmailProvider(
            "127.0.0.1", sink.port, "app@example.com", tls="ssl", ca_file=str(peers.certificate.ca_file)
        )
        assert isinstance(send(provider, Channel.EMAIL, "user@example.com"), Delivered)
    finally:
        sink.stop()
    (mail,) = inbox.of("email")
    assert mail["tls"] is True


def test_starttls_refused_by_a_plain_server_is_a_configuration_error(peers: Peers) -> None:
    provider = SmtpEmailProvider(
        "127.0.0.1",
        peers.smtp.port,
        "app@example.com",
        tls="starttls",
        ca_file=str(peers.certificate.ca_file),
    )
    outcome = send(provider, Channel.EMAIL, "user@example.com")
    assert isinstance(outcome, DeliveryFailed)
    assert outcome.configuration_error


def test_a_default_subject_is_the_first_line(peers: Peers) -> None:
    provider = SmtpEmailProvider("127.0.0.1", peers.smtp.port, "app@example.com", tls="none")
    message = OutgoingMessage(
        "n-subject", Channel.EMAIL, "subject@example.com", "Your code is 1234\nmore", None, "c"
    )
    assert isinstance(asyncio.run(provider.send(message)), Delivered)
    mail = next(m for m in peers.inbox.of("email") if m["to"] == ["subject@example.com"])
    assert mail["subject"] == "Your code is 1234"


def test_twilio_receives_the_form_as_twilio_does(peers: Peers) -> None:
    provider = TwilioSmsProvider(
        TWILIO_SID, TWILIO_TOKEN, messaging_service_sid="MG" + "2" * 32, api_base=peers.twilio.base_url
    )
    outcome = send(provider, Channel.SMS, "+447911123999", "Your order shipped")
    assert isinstance(outcome, Delivered)
    assert outcome.provider_message_id.startswith("SM")
    sms = next(m for m in peers.inbox.of("sms") if m["sid"] == outcome.provider_message_id)
    assert (sms["to"], sms["body"], sms["messaging_service_sid"]) == (
        "+447911123999",
        "Your order shipped",
        "MG" + "2" * 32,
    )


def test_one_client_serves_the_invocations_of_one_loop(peers: Peers) -> None:
    provider = TelegramBotProvider(TELEGRAM_TOKEN, api_base=peers.telegram.base_url)

    async def twice() -> list[SendOutcome]:
        message = OutgoingMessage("n", Channel.TELEGRAM, "123456789", "hi", None, "c")
        first = await provider.send(message)
        client = provider._client.get()
        second = await provider.send(message)
        assert provider._client.get() is client
        return [first, second]

    assert all(isinstance(o, Delivered) for o in asyncio.run(twice()))
