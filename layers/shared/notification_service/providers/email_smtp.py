"""Email over SMTP with aiosmtplib: STARTTLS (587), implicit TLS (465) or plain (local relays only)."""

from __future__ import annotations

import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib
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
from notification_service.domain.recipient import InvalidAddress, mask_email, validate_email

logger = Logger(child=True)
DEFAULT_SUBJECT_LENGTH = 78


def default_subject(body: str) -> str:
    """The first line of the message, shortened: a subject a person can read in an inbox."""
    first = body.strip().splitlines()[0] if body.strip() else "Notification"
    return first if len(first) <= DEFAULT_SUBJECT_LENGTH else first[: DEFAULT_SUBJECT_LENGTH - 1] + "…"


class SmtpEmailProvider:
    channel = Channel.EMAIL

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        tls: str = "starttls",
        username: str = "",
        password: str = "",
        timeout_seconds: float = 10,
        ca_file: str = "",
    ) -> None:
        if tls not in {"starttls", "ssl", "none"}:
            raise ValueError(f"unknown SMTP TLS mode {tls!r}")
        self._host = host
        self._port = port
        self._sender = sender
        self._tls = tls
        self._username = username or None
        self._password = password or None
        self._timeout = timeout_seconds
        self._tls_context = ssl.create_default_context(cafile=ca_file or None) if tls != "none" else None
        self._domain = sender.rpartition("@")[2] or "localhost"

    def build(self, message: OutgoingMessage) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self._sender
        mail["To"] = Address(addr_spec=message.address)
        mail["Subject"] = message.subject or default_subject(message.body)
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = make_msgid(idstring=message.notification_id, domain=self._domain)
        mail["X-Notification-ID"] = message.notification_id
        mail["X-Correlation-ID"] = message.correlation_id
        mail.set_content(message.body, charset="utf-8")
        if message.html is not None:
            mail.add_alternative(message.html, subtype="html", charset="utf-8")
        return mail

    async def send(self, message: OutgoingMessage, commit: Commit = no_commit) -> ProviderAnswer:
        try:
            validate_email(message.address)
        except InvalidAddress as exc:
            return DeliveryFailed.permanent(f"invalid email address: {exc}")
        try:
            mail = self.build(message)
        except (ValueError, TypeError) as exc:  # a header the email package refuses to write
            return DeliveryFailed.permanent(f"cannot build the mail: {type(exc).__name__}")
        try:
            # connect, TLS and login first: the intent is written only once the mail itself goes
            async with aiosmtplib.SMTP(
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                use_tls=self._tls == "ssl",
                start_tls=self._tls == "starttls",
                tls_context=self._tls_context,
                timeout=self._timeout,
            ) as smtp:
                await commit()
                await smtp.send_message(mail)
        except aiosmtplib.SMTPException as exc:
            failure = classify(exc)
            if failure.configuration_error:
                logger.error("SMTP configuration error", extra={"channel": "email", "reason": failure.reason})
            return failure
        except OSError as exc:  # refused, unreachable, TLS handshake failures
            return DeliveryFailed.transient(f"SMTP connection failed: {type(exc).__name__}")
        logger.info(
            "email handed to the SMTP server", extra={"channel": "email", "to": mask_email(message.address)}
        )
        return Delivered(str(mail["Message-ID"]))


def classify(exc: aiosmtplib.SMTPException) -> DeliveryFailed:
    """4xx and connection trouble: try again later; 5xx about the recipient: never; our own
    credentials or sender refused: a configuration error (transient for the notification)."""
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return DeliveryFailed.misconfigured(f"SMTP authentication failed ({exc.code})")
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return DeliveryFailed.misconfigured(f"SMTP server does not support what SMTP_TLS asks: {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return DeliveryFailed.misconfigured(f"SMTP server refused the sender SMTP_FROM ({exc.code})")
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refusal.code for refusal in exc.recipients]
        reason = f"recipient refused ({', '.join(str(c) for c in codes)})"
        return (
            DeliveryFailed.permanent(reason)
            if all(c >= 500 for c in codes)
            else DeliveryFailed.transient(reason)
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        reason = f"SMTP server answered {exc.code}"
        return DeliveryFailed.permanent(reason) if exc.code >= 500 else DeliveryFailed.transient(reason)
    if "STARTTLS" in str(exc):  # aiosmtplib: "STARTTLS extension not supported by server"
        return DeliveryFailed.misconfigured("SMTP server does not offer STARTTLS (SMTP_TLS=starttls)")
    if "AUTH" in str(exc):  # aiosmtplib: "SMTP AUTH extension not supported by server."
        return DeliveryFailed.misconfigured("SMTP server does not offer AUTH but SMTP_USER is set")
    return DeliveryFailed.transient(f"SMTP error: {type(exc).__name__}")
