"""WebhookSender against real local servers: plain HTTP and HTTPS (a trustme CA) on 127.0.0.1,
a server that never answers, a port nobody listens on. Names are resolved by injected resolvers
(.test names never resolve for real), which is also how the address pinning is observed."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trustme
from notification_service.adapters.webhook_sender import USER_AGENT, WebhookSender, resolve
from notification_service.domain.webhook import SIGNATURE_HEADER, event_id, sign, verify

from tests.integration.peers import SilentServer

SECRET = "whsec_integration"
TS = 1_700_000_000
HOST = "hooks.example.test"  # .test never resolves (RFC 2606): only the injected resolver knows it

Responder = Callable[["_Handler"], None]


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A threaded HTTP(S) server on 127.0.0.1 that records every request and answers with `respond`."""

    respond: Responder
    tls: ssl.SSLContext | None = None
    requests: list[Received] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)  # TLS SNI, one per handshake
    release: threading.Event = field(default_factory=threading.Event)  # ends a held response
    client_closed: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        if self.tls is not None:
            self.tls.sni_callback = self._record_sni
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def _record_sni(self, _sock: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        self.server_names.append(name)

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    receiver: Receiver


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        receiver = self.server.receiver
        receiver.requests.append(Received(self.command, self.path, dict(self.headers.items()), body))
        receiver.respond(self)

    def do_GET(self) -> None:  # what a followed redirect would send
        self.do_POST()

    def log_message(self, format: str, *args: object) -> None:
        return


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Responder:
    def respond(handler: _Handler) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return respond


def hold_after(status: int, declared_length: int, sent: bytes) -> Responder:
    """Answers `status`, declares a body of `declared_length` bytes, sends `sent`, then sends nothing
    more: it waits until the client closes the connection (recorded) or the test ends."""

    def respond(handler: _Handler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Length", str(declared_length))
        handler.end_headers()
        handler.wfile.write(sent)
        handler.wfile.flush()
        handler.connection.settimeout(30)
        try:
            if handler.connection.recv(1) == b"":  # EOF: the client hung up
                handler.server.receiver.client_closed.set()
        except OSError:
            handler.server.receiver.client_closed.set()
        handler.server.receiver.release.wait(30)
        handler.close_connection = True

    return respond


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(respond: Responder, tls: ssl.SSLContext | None = None) -> Receiver:
        receiver = Receiver(respond, tls)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_server(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


def client_trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


class CountingResolver:
    """Answers `first` on the first lookup and `later` on any other: a DNS-rebinding name."""

    def __init__(self, first: list[str], later: list[str] | None = None) -> None:
        self.first = first
        self.later = later if later is not None else ["169.254.169.254"]
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return self.first if len(self.calls) == 1 else self.later


def event_body(status: str = "SENT") -> bytes:
    event = {
        "id": event_id("n-1", status),
        "notification_id": "n-1",
        "status": status,
        "channel": "email",
        "attempts": 2,
    }
    return json.dumps(event, separators=(",", ":")).encode()


def signed(body: bytes) -> dict[str, str]:
    return {SIGNATURE_HEADER: sign(SECRET, body, TS)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- answers -----------------------------------------------------------------------------------


def test_the_receiver_gets_the_exact_body_and_a_signature_verify_accepts(
    receivers: Callable[..., Receiver],
) -> None:
    receiver = receivers(answer(200, b"ok"))
    body = event_body()
    headers = {**signed(body), "X-Event-Id": event_id("n-1", "SENT"), "content-type": "text/plain"}

    result = WebhookSender(allow_private=True).send(receiver.url("/hook?x=1"), body, headers)

    assert result.delivered
    assert result.status_code == 200
    assert result.error is None
    assert not result.retryable
    assert result.duration_ms > 0
    [request] = receiver.requests
    assert request.method == "POST"
    assert request.path == "/hook?x=1"
    assert request.body == body
    assert verify(SECRET, request.body, request.headers[SIGNATURE_HEADER], now=TS + 5)
    assert not verify("whsec_other", request.body, request.headers[SIGNATURE_HEADER], now=TS + 5)
    assert request.headers["Content-Type"] == "application/json"  # the caller's text/plain is dropped
    assert request.headers["User-Agent"] == USER_AGENT == "notification-service-webhooks/1"
    assert request.headers["X-Event-Id"] == event_id("n-1", "SENT")
    assert request.headers["Host"] == f"127.0.0.1:{receiver.port}"


@pytest.mark.parametrize(
    ("status", "delivered", "retryable"),
    [
        (200, True, False),
        (201, True, False),
        (204, True, False),
        (400, False, False),
        (401, False, False),
        (404, False, False),
        (410, False, False),
        (408, False, True),
        (429, False, True),
        (500, False, True),
        (502, False, True),
        (503, False, True),
    ],
)
def test_status_codes(
    receivers: Callable[..., Receiver], status: int, delivered: bool, retryable: bool
) -> None:
    receiver = receivers(answer(status, b"" if status == 204 else b"{}"))

    result = WebhookSender(allow_private=True).send(receiver.url(), b"{}", {})

    assert (result.delivered, result.status_code, result.retryable) == (delivered, status, retryable)
    assert (result.error is None) is delivered
    if not delivered:
        assert result.error == f"HTTP {status}"


def test_a_redirect_is_not_followed(receivers: Callable[..., Receiver]) -> None:
    receiver = receivers(answer(302, headers={"Location": "/elsewhere"}))

    result = WebhookSender(allow_private=True).send(receiver.url("/hook"), b"{}", {})

    assert not result.delivered
    assert result.status_code == 302
    assert not result.retryable
    assert result.error == "HTTP 302: redirects are not followed"
    assert [request.path for request in receiver.requests] == ["/hook"]  # no request to /elsewhere


def test_a_huge_response_body_is_not_read_beyond_the_limit(receivers: Callable[..., Receiver]) -> None:
    # GIVEN a server that declares 100 MB, sends 256 KiB and then waits for the client to hang up
    receiver = receivers(hold_after(200, 100 * 1024 * 1024, b"x" * 256 * 1024))
    timeout = 10.0

    # WHEN the sender reads at most 4096 bytes
    result = WebhookSender(allow_private=True, timeout_seconds=timeout, max_response_bytes=4096).send(
        receiver.url(), b"{}", {}
    )

    # THEN it answers without waiting for the rest (a sender reading on would only stop at its read
    # timeout, after `timeout` seconds of silence) and hangs up
    assert result.delivered
    assert result.status_code == 200
    assert result.duration_ms < timeout * 1000
    assert receiver.client_closed.wait(10)


def test_a_body_that_stalls_after_the_status_does_not_change_the_answer(
    receivers: Callable[..., Receiver],
) -> None:
    receiver = receivers(hold_after(200, 1000, b"partial"))

    result = WebhookSender(allow_private=True, timeout_seconds=0.2).send(receiver.url(), b"{}", {})

    assert result.delivered
    assert result.status_code == 200


# --- network problems --------------------------------------------------------------------------


def test_a_server_that_never_answers_times_out() -> None:
    # GIVEN a server that accepts the connection and never sends a byte
    silent = SilentServer()
    try:
        # WHEN the read timeout is 0.2 s
        result = WebhookSender(allow_private=True, timeout_seconds=0.2).send(
            f"http://127.0.0.1:{silent.port}/hook", b"{}", {}
        )
    finally:
        silent.close()

    # THEN the timeout ends the send: retryable, no status, and not before the timeout
    assert not result.delivered
    assert result.status_code is None
    assert result.retryable
    assert result.error == "timed out (ReadTimeout)"
    assert result.duration_ms >= 150


def test_nobody_listening_is_retryable() -> None:
    result = WebhookSender(allow_private=True, timeout_seconds=2).send(
        f"http://127.0.0.1:{free_port()}/hook", b"{}", {}
    )

    assert not result.delivered
    assert result.status_code is None
    assert result.retryable
    assert result.error is not None
    assert result.error.startswith("could not connect to 127.0.0.1: ConnectError")


def test_a_name_that_does_not_resolve_is_retryable() -> None:
    def unresolvable(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    result = WebhookSender(allow_private=False, resolver=unresolvable).send(f"https://{HOST}/hook", b"{}", {})

    assert not result.delivered
    assert result.retryable
    assert result.error is not None
    assert result.error.startswith(f"could not resolve {HOST}")


def test_the_default_resolver_is_getaddrinfo(receivers: Callable[..., Receiver]) -> None:
    # localhost comes from /etc/hosts (no DNS query leaves the machine); if it also gives ::1,
    # nobody listens there and the sender goes on to 127.0.0.1
    receiver = receivers(answer(200))

    result = WebhookSender(allow_private=True).send(receiver.url(host="localhost"), b"{}", {})

    assert result.delivered, result.error
    assert receiver.requests[0].headers["Host"] == f"localhost:{receiver.port}"
    assert "127.0.0.1" in resolve("localhost", receiver.port)
    assert resolve("127.0.0.1", 443) == ["127.0.0.1"]


def test_the_next_address_is_tried_when_one_refuses_the_connection(
    receivers: Callable[..., Receiver],
) -> None:
    # GIVEN a name with two addresses, the first with nobody listening on the port (::1: the server
    # listens on 127.0.0.1 only; without IPv6 the connect fails just the same)
    receiver = receivers(answer(200))
    resolver = CountingResolver(["::1", "127.0.0.1"])

    result = WebhookSender(allow_private=True, resolver=resolver).send(
        receiver.url(host="hooks.internal.test"), b"{}", {}
    )

    assert result.delivered
    assert len(receiver.requests) == 1
    assert resolver.calls == [("hooks.internal.test", receiver.port)]


# --- SSRF guard --------------------------------------------------------------------------------


def test_allow_private_false_refuses_127_0_0_1(receivers: Callable[..., Receiver]) -> None:
    receiver = receivers(answer(200))

    result = WebhookSender(allow_private=False).send(receiver.url(), b"{}", {})

    assert not result.delivered
    assert result.status_code is None
    assert not result.retryable
    assert result.error == "callback_url refused: address 127.0.0.1 is loopback, not public"
    assert receiver.requests == []


def test_allow_private_false_refuses_http() -> None:
    result = WebhookSender(allow_private=False).send("http://hooks.example.com/hook", b"{}", {})

    assert not result.delivered
    assert not result.retryable
    assert result.error == "callback_url refused: scheme must be https"


@pytest.mark.parametrize(
    ("addresses", "refused"),
    [
        (["10.0.0.7"], "10.0.0.7, private"),
        (["169.254.169.254"], "169.254.169.254, link-local"),
        (["93.184.216.34", "127.0.0.1"], "127.0.0.1, loopback"),  # ANY private address refuses
        (["2606:2800:220:1:248:1893:25c8:1946", "::ffff:10.0.0.1"], "::ffff:10.0.0.1, private"),
        (["64:ff9b::a9fe:a9fe"], "64:ff9b::a9fe:a9fe, link-local"),
    ],
)
def test_a_public_looking_name_that_resolves_to_a_private_address_is_refused(
    addresses: list[str], refused: str
) -> None:
    resolver = CountingResolver(addresses)

    result = WebhookSender(allow_private=False, resolver=resolver).send(
        "https://hooks.example.com/hook", b"{}", {}
    )

    assert not result.delivered
    assert result.status_code is None
    assert not result.retryable
    assert result.error == f"callback_url refused: hooks.example.com resolves to {refused}, not public"
    assert resolver.calls == [("hooks.example.com", 443)]


def test_a_refused_url_is_not_retryable() -> None:
    result = WebhookSender(allow_private=True).send("https://user:pw@hooks.example.com/", b"{}", {})

    assert not result.delivered
    assert not result.retryable
    assert result.error == "callback_url refused: credentials in the URL (user:pass@) are not allowed"


# --- address pinning over TLS ------------------------------------------------------------------


def test_https_goes_to_the_checked_address_with_the_name_as_sni_and_host(
    receivers: Callable[..., Receiver], ca: trustme.CA
) -> None:
    # GIVEN an HTTPS receiver whose certificate names only HOST, and a name that resolves to it
    # once and to the metadata address on any later lookup (DNS rebinding)
    receiver = receivers(answer(200), tls=tls_server(ca, HOST))
    resolver = CountingResolver(["127.0.0.1"], later=["169.254.169.254"])
    sender = WebhookSender(allow_private=True, resolver=resolver, verify=client_trusting(ca))
    body = event_body("FAILED")

    result = sender.send(receiver.url("/hook", host=HOST), body, signed(body))

    # THEN the one lookup's address got the request: TLS verified the certificate against the name
    assert result.delivered, result.error
    assert resolver.calls == [(HOST, receiver.port)]
    assert receiver.server_names == [HOST]
    [request] = receiver.requests
    assert request.headers["Host"] == f"{HOST}:{receiver.port}"
    assert request.body == body
    assert verify(SECRET, request.body, request.headers[SIGNATURE_HEADER], now=TS)


def test_https_checks_the_certificate_against_the_name_not_the_address(
    receivers: Callable[..., Receiver], ca: trustme.CA
) -> None:
    # GIVEN a certificate valid for the address the name resolves to, but not for the name
    receiver = receivers(answer(200), tls=tls_server(ca, "127.0.0.1", "other.example.test"))
    sender = WebhookSender(
        allow_private=True, resolver=CountingResolver(["127.0.0.1"]), verify=client_trusting(ca)
    )

    result = sender.send(receiver.url(host=HOST), b"{}", {})

    assert not result.delivered
    assert result.retryable
    assert result.error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in result.error
    assert receiver.requests == []


def test_https_to_an_ip_literal_checks_the_certificate_for_the_ip(
    receivers: Callable[..., Receiver], ca: trustme.CA
) -> None:
    receiver = receivers(answer(200), tls=tls_server(ca, "127.0.0.1"))

    result = WebhookSender(allow_private=True, verify=client_trusting(ca)).send(receiver.url(), b"{}", {})

    assert result.delivered, result.error
    assert receiver.server_names == [None]  # no SNI for an IP address


def test_https_with_an_unknown_ca_is_refused_by_default(
    receivers: Callable[..., Receiver], ca: trustme.CA
) -> None:
    receiver = receivers(answer(200), tls=tls_server(ca, HOST))
    sender = WebhookSender(allow_private=True, resolver=CountingResolver(["127.0.0.1"]))

    result = sender.send(receiver.url(host=HOST), b"{}", {})

    assert not result.delivered
    assert result.error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in result.error


def test_a_ca_file_path_is_accepted_as_verify(
    receivers: Callable[..., Receiver], ca: trustme.CA, tmp_path: object
) -> None:
    receiver = receivers(answer(200), tls=tls_server(ca, HOST))
    ca_file = f"{tmp_path}/ca.pem"
    ca.cert_pem.write_to_path(ca_file)
    sender = WebhookSender(allow_private=True, resolver=CountingResolver(["127.0.0.1"]), verify=ca_file)

    assert sender.send(receiver.url(host=HOST), b"{}", {}).delivered


def test_plain_http_to_a_name_is_pinned_too(receivers: Callable[..., Receiver]) -> None:
    receiver = receivers(answer(204))
    resolver = CountingResolver(["127.0.0.1"])

    result = WebhookSender(allow_private=True, resolver=resolver).send(
        receiver.url(host="sink.internal.test"), b"{}", {"Host": "evil.example.com"}
    )

    assert result.delivered
    assert resolver.calls == [("sink.internal.test", receiver.port)]
    assert receiver.requests[0].headers["Host"] == f"sink.internal.test:{receiver.port}"  # not the caller's
