"""Status callbacks end to end over HTTP: the real SMS provider asks the Twilio peer for a callback, the
peer posts it, signed, to a small real HTTP server that stands in for API Gateway and the API function:
it turns the request into a proxy event (the local gateway's `build_event`) and runs `parse_and_verify`
on it, once with the public URL configured and once rebuilding the URL from the request (the stage in
the path, the scheme from X-Forwarded-Proto, as API Gateway passes them)."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from notification_service.domain.delivery import Delivered, OutgoingMessage, SendOutcome
from notification_service.domain.model import Channel
from notification_service.domain.receipts import ReceiptStatus
from notification_service.http.twilio_callback import (
    STATUS_PATH,
    ForbiddenCallback,
    InvalidCallback,
    TwilioCallback,
    callback_url_for,
    parse_and_verify,
)
from notification_service.providers.sms_twilio import TwilioSmsProvider

from infra.api_gateway import build_event
from infra.emulator import free_port
from infra.sinks import Inbox, StatusCallback, TwilioSink

TWILIO_SID = "AC" + "3" * 32
TWILIO_TOKEN = "callback-twilio-token"
STAGE = "Prod"


@dataclass
class Receiver:
    """The API's callback route in miniature: 200 for a verified callback, 403 / 400 otherwise.

    `public`: the URL is the configured public base + path + query. Not public: the receiver serves
    under /Prod like an API Gateway stage, and the URL is rebuilt from the event as API Gateway
    makes it (stage in requestContext.path, X-Forwarded-Proto: http added)."""

    public: bool
    accepted: list[TwilioCallback] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        root = f"http://127.0.0.1:{self.server.server_address[1]}"
        return root if self.public else f"{root}/{STAGE}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = receiver.handle(self.path, list(self.headers.items()), body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()

    def handle(
        self, raw_path: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        if self.public:
            event = build_event("POST", raw_path, headers, body, "127.0.0.1", resource=STATUS_PATH)
        else:
            if not raw_path.startswith(f"/{STAGE}/"):
                return 403, {"message": "Missing Authentication Token"}
            event = build_event(
                "POST",
                raw_path.removeprefix(f"/{STAGE}"),
                [*headers, ("X-Forwarded-Proto", "http")],
                body,
                "127.0.0.1",
                resource=STATUS_PATH,
                stage=STAGE,
            )
        try:
            callback = parse_and_verify(event, TWILIO_TOKEN, self.base_url if self.public else None)
        except ForbiddenCallback as exc:
            self.refused.append((403, exc.reason))
            return 403, {"error": "forbidden", "message": exc.reason}
        except InvalidCallback as exc:
            self.refused.append((400, exc.field))
            return 400, {"error": "validation_error", "message": str(exc)}
        self.accepted.append(callback)
        return 200, {}


@pytest.fixture(scope="module")
def twilio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwilioSink]:
    sink = TwilioSink(Inbox(tmp_path_factory.mktemp("twilio") / "inbox.jsonl"), TWILIO_SID, TWILIO_TOKEN)
    yield sink.start()
    sink.stop()


def next_callback(twilio: TwilioSink, before: int) -> StatusCallback:
    """The one callback made after the first `before` (the peer serves the whole module)."""
    (made,) = twilio.wait_for_callbacks(before + 1)[before:]
    return made


@pytest.fixture(params=[True, False], ids=["public-url", "url-from-request"])
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    running = Receiver(public=request.param).start()
    yield running
    running.stop()


async def send_once(provider: TwilioSmsProvider, message: OutgoingMessage) -> SendOutcome:
    """One send, then the client's connection pool closed (the loop ends with the test)."""
    try:
        return await provider.send(message)
    finally:
        await provider._client.get().http_client.close()


def send_sms(twilio: TwilioSink, receiver: Receiver, notification_id: str, to: str) -> str:
    provider = TwilioSmsProvider(
        TWILIO_SID,
        TWILIO_TOKEN,
        from_number="+15005550006",
        api_base=twilio.base_url,
        status_callback_base=receiver.base_url,
    )
    message = OutgoingMessage(notification_id, Channel.SMS, to, "Your order shipped", None, "corr-1")
    outcome = asyncio.run(send_once(provider, message))
    assert isinstance(outcome, Delivered), outcome
    return outcome.provider_message_id


def test_a_delivered_sms_is_reported_signed_and_verified(twilio: TwilioSink, receiver: Receiver) -> None:
    before = len(twilio.callbacks_sent)
    sid = send_sms(twilio, receiver, "n-delivered", "+447911123456")

    made = next_callback(twilio, before)

    assert (made.status, made.error) == (200, None)
    assert made.url == callback_url_for(receiver.base_url, "n-delivered")
    (callback,) = receiver.accepted
    assert (callback.notification_id, callback.message_sid, callback.receipt) == (
        "n-delivered",
        sid,
        ReceiptStatus.DELIVERED,
    )
    assert callback.error_code is None
    assert (callback.params["AccountSid"], callback.params["To"], callback.params["From"]) == (
        TWILIO_SID,
        "+447911123456",
        "+15005550006",
    )


def test_a_number_ending_0003_is_reported_undelivered_with_30003(
    twilio: TwilioSink, receiver: Receiver
) -> None:
    before = len(twilio.callbacks_sent)
    sid = send_sms(twilio, receiver, "n-undelivered", "+447911120003")

    made = next_callback(twilio, before)

    assert made.status == 200
    (callback,) = receiver.accepted
    assert (callback.message_sid, callback.message_status, callback.error_code, callback.receipt) == (
        sid,
        "undelivered",
        "30003",
        ReceiptStatus.UNDELIVERED,
    )


def test_a_callback_signed_with_another_token_is_refused(tmp_path: Path, receiver: Receiver) -> None:
    forger = TwilioSink(Inbox(tmp_path / "forged.jsonl"), TWILIO_SID, "not-the-auth-token").start()
    try:
        provider = TwilioSmsProvider(
            TWILIO_SID,
            "not-the-auth-token",
            from_number="+15005550006",
            api_base=forger.base_url,
            status_callback_base=receiver.base_url,
        )
        message = OutgoingMessage("n-forged", Channel.SMS, "+447911123456", "hi", None, "c")
        assert isinstance(asyncio.run(send_once(provider, message)), Delivered)

        (made,) = forger.wait_for_callbacks(1)
    finally:
        forger.stop()

    assert (made.status, made.error) == (403, "answered 403")
    assert receiver.accepted == []
    assert receiver.refused == [(403, "signature does not match")]


def test_a_replayed_signature_on_another_status_is_refused(twilio: TwilioSink, receiver: Receiver) -> None:
    before = len(twilio.callbacks_sent)
    send_sms(twilio, receiver, "n-replayed", "+447911120003")
    made = next_callback(twilio, before)
    assert made.status == 200

    forged = {**made.params, "MessageStatus": "delivered"}
    del forged["ErrorCode"]
    status = post(made.url, forged, made.signature)

    assert status == 403
    assert receiver.refused == [(403, "signature does not match")]
    assert len(receiver.accepted) == 1


def test_a_callback_without_a_signature_is_refused(twilio: TwilioSink, receiver: Receiver) -> None:
    status = post(
        callback_url_for(receiver.base_url, "n-1"), {"MessageSid": "SM1", "MessageStatus": "delivered"}
    )

    assert status == 403
    assert receiver.refused == [(403, "missing signature")]


def post(url: str, params: dict[str, str], signature: str | None = None) -> int:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    request = urllib.request.Request(url, data=urlencode(params).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


# --- the peer on its own ------------------------------------------------------------------------------


def create_request(**form: str) -> tuple[str, dict[str, str], bytes]:
    """A create as the twilio client posts it (path, basic auth, form)."""
    path = f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    auth = "Basic " + base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
    return path, {"Authorization": auth}, urlencode(form).encode()


def test_no_callback_is_planned_without_a_status_callback_url(twilio: TwilioSink) -> None:
    status, payload, after = twilio.respond(
        *create_request(To="+447911123456", From="+15005550006", Body="hi")
    )

    assert (status, payload["status"], after) == (201, "queued", None)


def test_no_callback_is_planned_for_a_refused_create(twilio: TwilioSink) -> None:
    status, _, after = twilio.respond(
        *create_request(
            To="+447911120001", From="+15005550006", Body="hi", StatusCallback="http://127.0.0.1:9/x"
        )
    )

    assert (status, after) == (400, None)


def test_an_unreachable_callback_url_is_recorded_and_logged_not_raised(twilio: TwilioSink) -> None:
    url = f"http://127.0.0.1:{free_port()}{STATUS_PATH}?notification_id=n-1"
    status, _, after = twilio.respond(
        *create_request(To="+447911123456", From="+15005550006", Body="hi", StatusCallback=url)
    )
    assert status == 201 and after is not None
    before = len(twilio.callbacks_sent)

    after()  # what the peer runs on its own thread once the create is answered

    (made,) = twilio.wait_for_callbacks(before + 1, timeout=0)[before:]
    assert isinstance(made, StatusCallback)
    assert made.status is None
    assert made.error is not None and "Connection refused" in made.error


def test_waiting_for_more_callbacks_than_made_times_out(twilio: TwilioSink) -> None:
    made = len(twilio.callbacks_sent)

    with pytest.raises(TimeoutError, match=f"{made} status callback"):
        twilio.wait_for_callbacks(made + 1, timeout=0.05)
