"""Local peers that speak the providers' real protocols, so the real providers run locally and in tests:
an SMTP server (aiosmtpd), Twilio's Messages API and Telegram's Bot API over HTTP. What they receive
is appended to an inbox file (JSON lines) that `notifyctl sinks` prints.

Magic addresses make them fail the way the real services do:
- email: a local part starting `reject` is refused (550), `tempfail` deferred (450);
- SMS: a number ending 0001 is invalid (21211), 0009 not mobile (21614), 0429 rate-limited (20429),
  0500 a server error (20500);
- Telegram: chat id 400400 is not found (400), 403403 blocked the bot (403), 429429 is rate-limited
  (429, retry_after 3), 500500 a server error.
"""

from __future__ import annotations

import base64
import email
import email.policy
import itertools
import json
import re
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from infra.emulator import free_port

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
DEFAULT_INBOX = Path(".notifyctl") / "sinks.jsonl"


class Inbox:
    """What the sinks received, in memory and appended to a JSON-lines file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.items: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def add(self, item: dict[str, Any]) -> None:
        item = {"received_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **item}
        with self._lock:
            self.items.append(item)
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(item) + "\n")

    def of(self, channel: str) -> list[dict[str, Any]]:
        with self._lock:
            return [i for i in self.items if i["channel"] == channel]


def read_inbox(path: Path = DEFAULT_INBOX) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# -- SMTP ---------------------------------------------------------------------------------------------
class _MailHandler:
    def __init__(self, inbox: Inbox, implicit_tls: bool = False) -> None:
        self._inbox = inbox
        self._implicit_tls = implicit_tls  # aiosmtpd marks only STARTTLS sessions

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        local = address.partition("@")[0].lower()
        if local.startswith("reject"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if local.startswith("tempfail"):
            return f"450 4.2.0 <{address}>: Recipient address rejected: try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        mail = email.message_from_bytes(raw, policy=email.policy.default)
        body = mail.get_body(("plain",))
        self._inbox.add(
            {
                "channel": "email",
                "to": list(envelope.rcpt_tos),
                "from": envelope.mail_from,
                "subject": str(mail["Subject"]),
                "message_id": str(mail["Message-ID"]),
                "date": str(mail["Date"]),
                "body": body.get_content().replace("\r\n", "\n").rstrip("\n") if body is not None else "",
                "authenticated_as": getattr(session, "login_data", None) and "yes",
                "tls": self._implicit_tls or session.ssl is not None,
            }
        )
        return "250 2.0.0 Message accepted for delivery"


@dataclass
class SmtpSink:
    inbox: Inbox
    port: int = 0
    tls_context: ssl.SSLContext | None = None  # STARTTLS offered (and required) when given
    implicit_tls: bool = False  # TLS from the first byte (port 465 style), with tls_context
    username: str = ""
    password: str = ""
    _controller: Controller | None = field(default=None, repr=False)

    def start(self) -> SmtpSink:
        self.port = self.port or free_port()
        parameters: dict[str, Any] = {}
        if self.tls_context is not None and not self.implicit_tls:
            parameters.update(tls_context=self.tls_context, require_starttls=True)
        if self.username:
            parameters.update(
                authenticator=self._authenticate,
                auth_required=True,
                auth_require_tls=self.tls_context is not None,
            )
        self._controller = Controller(
            _MailHandler(self.inbox, self.implicit_tls),
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=self.tls_context if self.implicit_tls else None,
            server_hostname="localhost",
            ready_timeout=10,
            **parameters,
        )
        self._controller.start()
        return self

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode() == self.username and auth_data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False)

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


# -- HTTP peers -----------------------------------------------------------------------------------------
class _HttpPeer:
    """A threaded HTTP server whose subclass answers `handle(method, path, headers, body)`."""

    def __init__(self, port: int = 0) -> None:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, payload = peer.handle(self.path, dict(self.headers.items()), self.rfile.read(length))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class TwilioSink(_HttpPeer):
    """Twilio's Messages API: form fields in, JSON out, errors as Twilio shapes them."""

    _PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")
    _FAILURES: ClassVar[dict[str, tuple[int, int, str]]] = {
        "0001": (400, 21211, "The 'To' number {to} is not a valid phone number."),
        "0009": (400, 21614, "'To' number {to} is not a valid mobile number"),
        "0429": (429, 20429, "Too Many Requests"),
        "0500": (500, 20500, "Internal Server Error"),
    }

    def __init__(self, inbox: Inbox, account_sid: str, auth_token: str, port: int = 0) -> None:
        super().__init__(port)
        self.inbox = inbox
        self.account_sid = account_sid
        self.auth_token = auth_token

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        match = self._PATH.match(path.split("?", maxsplit=1)[0])
        if match is None:
            return 404, _twilio_error(404, 20404, "The requested resource was not found")
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if match["sid"] != self.account_sid or headers.get("Authorization") != expected:
            return 401, _twilio_error(401, 20003, "Authenticate")
        form = {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        to, text = form.get("To", ""), form.get("Body", "")
        if not E164.match(to):
            return 400, _twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return 400, _twilio_error(400, 21603, "A 'From' phone number is required.")
        if len(text) > 1600:
            return 400, _twilio_error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        failure = self._FAILURES.get(to[-4:])
        if failure is not None:
            status, code, message = failure
            return status, _twilio_error(status, code, message.format(to=to))
        sid = "SM" + uuid.uuid4().hex
        self.inbox.add(
            {
                "channel": "sms",
                "to": to,
                "from": form.get("From"),
                "body": text,
                "sid": sid,
                "messaging_service_sid": form.get("MessagingServiceSid"),
            }
        )
        now = formatdate(usegmt=True)
        return 201, {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": to,
            "from": form.get("From"),
            "body": text,
            "status": "queued",
            "num_segments": "1",
            "num_media": "0",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "error_code": None,
            "error_message": None,
            "price": None,
            "price_unit": "USD",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            "subresource_uris": {},
        }


def _twilio_error(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class TelegramSink(_HttpPeer):
    """The Bot API's sendMessage: JSON or form in, {"ok": ...} out, errors as Telegram shapes them."""

    _PATH = re.compile(r"^/bot(?P<token>[^/]+)/sendMessage$")
    _FAILURES: ClassVar[dict[str, tuple[int, str, int | None]]] = {
        "400400": (400, "Bad Request: chat not found", None),
        "403403": (403, "Forbidden: bot was blocked by the user", None),
        "429429": (429, "Too Many Requests: retry after 3", 3),
        "500500": (500, "Internal Server Error", None),
    }

    def __init__(self, inbox: Inbox, token: str, port: int = 0, latency_seconds: float = 0) -> None:
        super().__init__(port)
        self.inbox = inbox
        self.token = token
        self.latency_seconds = latency_seconds  # injected before every answer (benchmarks)
        self._ids = itertools.count(1)

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        if self.latency_seconds:
            time.sleep(self.latency_seconds)
        match = self._PATH.match(path.split("?", maxsplit=1)[0])
        if match is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        if match["token"] != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        if headers.get("Content-Type", "").startswith("application/json"):
            form = json.loads(body or b"{}")
        else:
            form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
        chat_id, text = str(form.get("chat_id", "")), str(form.get("text", ""))
        if not chat_id or not text:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}
        if len(text) > 4096:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}
        failure = self._FAILURES.get(chat_id)
        if failure is not None:
            status, description, retry_after = failure
            answer: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
            if retry_after is not None:
                answer["parameters"] = {"retry_after": retry_after}
            return status, answer
        message_id = next(self._ids)
        self.inbox.add({"channel": "telegram", "to": chat_id, "body": text, "message_id": message_id})
        return 200, {
            "ok": True,
            "result": {
                "message_id": message_id,
                "date": int(time.time()),
                "text": text,
                "chat": {"id": int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id, "type": "private"},
            },
        }


# -- all three, for the local stack -----------------------------------------------------------------------
LOCAL_TWILIO_SID = "AC" + "0" * 31 + "1"
LOCAL_TWILIO_TOKEN = "local-twilio-auth-token"  # noqa: S105 - a sink's fixed credential, not a secret
LOCAL_TELEGRAM_TOKEN = "123456:local-telegram-bot-token"  # noqa: S105


@dataclass
class Sinks:
    inbox: Inbox
    smtp: SmtpSink | None = None
    twilio: TwilioSink | None = None
    telegram: TelegramSink | None = None

    def start(self) -> Sinks:
        self.smtp = SmtpSink(self.inbox).start()
        self.twilio = TwilioSink(self.inbox, LOCAL_TWILIO_SID, LOCAL_TWILIO_TOKEN).start()
        self.telegram = TelegramSink(self.inbox, LOCAL_TELEGRAM_TOKEN).start()
        return self

    def provider_environment(self) -> dict[str, str]:
        """What points the real providers at these sinks."""
        assert self.smtp is not None and self.twilio is not None and self.telegram is not None
        return {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp.port),
            "SMTP_TLS": "none",
            "SMTP_USER": "",
            "SMTP_PASSWORD": "",
            "TWILIO_ACCOUNT_SID": LOCAL_TWILIO_SID,
            "TWILIO_AUTH_TOKEN": LOCAL_TWILIO_TOKEN,
            "TWILIO_FROM_NUMBER": "+15005550006",
            "TWILIO_API_BASE": self.twilio.base_url,
            "TELEGRAM_BOT_TOKEN": LOCAL_TELEGRAM_TOKEN,
            "TELEGRAM_API_BASE": self.telegram.base_url,
        }

    def stop(self) -> None:
        for sink in (self.smtp, self.twilio, self.telegram):
            if sink is not None:
                sink.stop()
