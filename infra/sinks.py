"""Local peers that speak the providers' real protocols, so the real providers run locally and in tests:
an SMTP server (aiosmtpd), Twilio's Messages API and Telegram's Bot API over HTTP. What they receive
is appended to an inbox file (JSON lines) that `notifyctl sinks` prints.

Like Twilio, the Twilio peer reports on a message created with a `StatusCallback` URL: once it has
answered the create, a background thread POSTs the final status there, form-encoded with Twilio's
field names (MessageSid, MessageStatus `delivered` or `undelivered`, ErrorCode when undelivered,
AccountSid, To, From, and SmsSid, SmsStatus, ApiVersion), signed with `X-Twilio-Signature` by the
twilio package's RequestValidator and the peer's auth token. A callback that fails (refused, 5 s
without an answer, an error status) is logged and dropped, never retried. `TwilioSink.callbacks_sent`
records every attempt with its answer, and `wait_for_callbacks(n)` waits until n were made, so a test
needs no sleep.

Magic addresses make them fail the way the real services do:
- email: a local part starting `reject` is refused (550), `tempfail` deferred (450), `fullbox`
  refused (552, mailbox full) the first time that address is tried and accepted after (a mailbox
  that was emptied: what a manual retry is for);
- SMS: a number ending 0001 is invalid (21211), 0009 not mobile (21614), 0429 rate-limited (20429),
  0500 a server error (20500); 0003 is accepted but never reaches the handset: its status callback
  says `undelivered` with ErrorCode 30003 (unreachable destination handset);
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
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, urlencode

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from aws_lambda_powertools import Logger

from infra.emulator import free_port

logger = Logger(service="local-sinks")
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
        self._full_once: set[str] = set()  # `fullbox` addresses refused once already

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        local = address.partition("@")[0].lower()
        if local.startswith("reject"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if local.startswith("tempfail"):
            return f"450 4.2.0 <{address}>: Recipient address rejected: try again later"
        if local.startswith("fullbox") and address.lower() not in self._full_once:
            self._full_once.add(address.lower())
            return f"552 5.2.2 <{address}>: Mailbox full"
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
AfterReply = Callable[[], None]


class _HttpPeer:
    """A threaded HTTP server whose subclass answers `handle(path, headers, body)`, or `respond` when
    something must happen once the answer is out (it then runs on a thread of its own)."""

    def __init__(self, port: int = 0) -> None:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, payload, after = peer.respond(
                    self.path, dict(self.headers.items()), self.rfile.read(length)
                )
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()
                if after is not None:
                    threading.Thread(target=after, name="peer-after-reply", daemon=True).start()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def respond(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any], AfterReply | None]:
        """The answer, and what to do once it has been sent, if anything."""
        status, payload = self.handle(path, headers, body)
        return status, payload, None

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class StatusCallback:
    """One status callback the Twilio peer made: where, what (as signed), and how it was answered."""

    url: str
    params: dict[str, str]
    signature: str
    status: int | None  # the HTTP status answered; None when no answer came (`error` says why)
    error: str | None = None


class TwilioSink(_HttpPeer):
    """Twilio's Messages API: form fields in, JSON out, errors as Twilio shapes them; status callbacks
    to a create's StatusCallback URL once it is answered."""

    _PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")
    _FAILURES: ClassVar[dict[str, tuple[int, int, str]]] = {
        "0001": (400, 21211, "The 'To' number {to} is not a valid phone number."),
        "0009": (400, 21614, "'To' number {to} is not a valid mobile number"),
        "0429": (429, 20429, "Too Many Requests"),
        "0500": (500, 20500, "Internal Server Error"),
    }
    # Accepted (201, queued), then reported undelivered by the carrier with this error code.
    _UNDELIVERED: ClassVar[dict[str, str]] = {"0003": "30003"}  # unreachable destination handset
    CALLBACK_ATTEMPTS = 5  # a callback answered 503 + Retry-After is tried again
    CALLBACK_TIMEOUT_SECONDS = 5.0

    def __init__(
        self,
        inbox: Inbox,
        account_sid: str,
        auth_token: str,
        port: int = 0,
    ) -> None:
        super().__init__(port)
        self.inbox = inbox
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.callbacks_sent: list[StatusCallback] = []  # every attempt, in order (see wait_for_callbacks)
        self._callbacks_changed = threading.Condition()

    def wait_for_callbacks(self, count: int, timeout: float = 10) -> list[StatusCallback]:
        """The callbacks made so far once there are at least `count` (TimeoutError after `timeout` s)."""
        with self._callbacks_changed:
            if not self._callbacks_changed.wait_for(lambda: len(self.callbacks_sent) >= count, timeout):
                raise TimeoutError(
                    f"{len(self.callbacks_sent)} status callback(s) made in {timeout} s, expected {count}"
                )
            return list(self.callbacks_sent)

    def respond(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any], AfterReply | None]:
        status, payload = self.handle(path, headers, body)
        url = _form(body).get("StatusCallback") if status == 201 else None
        if not url:
            return status, payload, None
        to = str(payload["to"])
        error_code = self._UNDELIVERED.get(to[-4:])
        params = {
            "MessageSid": str(payload["sid"]),
            "SmsSid": str(payload["sid"]),
            "MessageStatus": "undelivered" if error_code else "delivered",
            "SmsStatus": "undelivered" if error_code else "delivered",
            "AccountSid": self.account_sid,
            "To": to,
            "From": str(payload["from"] or LOCAL_TWILIO_FROM),
            "ApiVersion": "2010-04-01",
        }
        if payload.get("messaging_service_sid"):
            params["MessagingServiceSid"] = str(payload["messaging_service_sid"])
        if error_code:
            params["ErrorCode"] = error_code
        return status, payload, lambda: self._send_callback(url, params)

    def _send_callback(self, url: str, params: dict[str, str]) -> None:
        from twilio.request_validator import RequestValidator

        signature: str = RequestValidator(self.auth_token).compute_signature(url, params)
        request = urllib.request.Request(  # noqa: S310 - the URL the create named, as Twilio does
            url,
            data=urlencode(params).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                "X-Twilio-Signature": signature,
                "User-Agent": "TwilioProxy/1.1",
            },
            method="POST",
        )
        for _ in range(self.CALLBACK_ATTEMPTS):
            status, error, retry_after = self._post_callback(request)
            if status != 503 or retry_after is None:
                break
            # "not yet": the service has not recorded the message (its round is still writing); it
            # says when to come back, as a Twilio connection override (#rc, #rp) would retry
            time.sleep(retry_after)
        if error is not None:
            logger.warning(
                "Twilio peer: status callback failed",
                extra={"url": url, "sid": params["MessageSid"], "error": error},
            )
        with self._callbacks_changed:
            self.callbacks_sent.append(StatusCallback(url, params, signature, status, error))
            self._callbacks_changed.notify_all()

    def _post_callback(self, request: urllib.request.Request) -> tuple[int | None, str | None, float | None]:
        """(status, error, the Retry-After of a 503) of one POST of the callback."""
        try:
            with urllib.request.urlopen(request, timeout=self.CALLBACK_TIMEOUT_SECONDS) as answer:  # noqa: S310
                return int(answer.status), None, None
        except urllib.error.HTTPError as exc:
            wait = exc.headers.get("Retry-After") if exc.headers else None
            retry_after = min(float(wait), 5.0) if wait and wait.isdigit() else None
            return exc.code, f"answered {exc.code}", retry_after
        except Exception as exc:  # refused, timed out, a broken answer: logged and dropped, as Twilio does
            return None, f"{type(exc).__name__}: {exc}", None

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        match = self._PATH.match(path.split("?", maxsplit=1)[0])
        if match is None:
            return 404, _twilio_error(404, 20404, "The requested resource was not found")
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if match["sid"] != self.account_sid or headers.get("Authorization") != expected:
            return 401, _twilio_error(401, 20003, "Authenticate")
        form = _form(body)
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


def _form(body: bytes) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}


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
LOCAL_TWILIO_FROM = "+15005550006"  # Twilio's magic test number "valid and SMS-capable"
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
            "TWILIO_FROM_NUMBER": LOCAL_TWILIO_FROM,
            "TWILIO_API_BASE": self.twilio.base_url,
            "TELEGRAM_BOT_TOKEN": LOCAL_TELEGRAM_TOKEN,
            "TELEGRAM_API_BASE": self.telegram.base_url,
        }

    def stop(self) -> None:
        for sink in (self.smtp, self.twilio, self.telegram):
            if sink is not None:
                sink.stop()
