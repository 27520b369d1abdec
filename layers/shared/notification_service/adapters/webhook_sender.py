"""Sends one delivery webhook: a POST of a signed JSON body to a notification's callback_url.

Synchronous (the dispatch runs it in a thread) and never raises for a network problem: the answer
is a WebhookResult. 2xx is delivered; 408, 429, 5xx, a timeout or a network error are retryable;
a 3xx (redirects are not followed) and any other 4xx are not.

SSRF guard. The URL is checked again (domain/webhook.py: https, no credentials, ...), then its host
is resolved (socket.getaddrinfo unless a resolver is given) and, unless private webhooks are
allowed, the webhook is refused when ANY resolved address is not public. The request then goes to
an address that was checked, never to a fresh lookup, so a name that resolves to a public address
for the check and to 169.254.169.254 a moment later (DNS rebinding) gets nothing. Pinning: the URL's
host is replaced by the checked IP address; the Host header keeps the name, and for https the
``sni_hostname`` request extension of httpcore makes the TLS handshake send the name as SNI and
verify the server certificate against the name (not the IP). If connecting to one address fails
before anything was sent, the next checked address is tried.

Each send uses its own client and connection (no pool shared between URLs, so a connection verified
for one name is never reused for another on the same address), ignores proxy environment variables
(a proxy would resolve the name itself), and reads at most `max_response_bytes` of the response
body (one network read of up to 64 KiB may fetch a little more) before closing the connection.

Timeouts: `timeout_seconds` bounds the connect, each write and each read (httpx semantics), not
the whole exchange: a server trickling its response headers byte by byte can hold a send longer.
Reading the body stops at a deadline of `timeout_seconds` after the response headers; once the
status line has arrived, a body that stalls or breaks off does not change the answer.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import certifi
import httpx

from notification_service.domain.webhook import (
    CallbackTarget,
    CallbackUrlRefused,
    never_allowed_reason,
    not_public_reason,
    parse_callback_url,
)

USER_AGENT = "notification-service-webhooks/1"
# Set by the sender, or meaningless to override: a caller's value is dropped.
_OWN_HEADERS = frozenset({"host", "content-type", "content-length", "transfer-encoding", "user-agent"})

Resolver = Callable[[str, int], list[str]]


@dataclass(frozen=True)
class WebhookResult:
    delivered: bool
    status_code: int | None  # None when no HTTP answer came (refused, unreachable, timed out)
    error: str | None  # None when delivered
    retryable: bool
    duration_ms: float


def resolve(host: str, port: int) -> list[str]:
    """The addresses of `host`, in getaddrinfo's order of preference, without duplicates."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [str(info[4][0]) for info in found if info[0] in (socket.AF_INET, socket.AF_INET6)]
    return list(dict.fromkeys(addresses))


class WebhookSender:
    def __init__(
        self,
        allow_private: bool,
        timeout_seconds: float = 5.0,
        max_response_bytes: int = 4096,
        resolver: Resolver | None = None,
        verify: ssl.SSLContext | str | bool = True,
    ) -> None:
        """`verify`: True (certifi's CAs, as httpx), a CA file or directory, an SSLContext, or False
        (no certificate check; tests only)."""
        self._allow_private = allow_private
        self._timeout_seconds = timeout_seconds
        self._max_response_bytes = max_response_bytes
        self._resolver: Resolver = resolver or resolve
        self._ssl_context = _ssl_context(verify)  # built once: loading the CA bundle costs ~ms

    def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> WebhookResult:
        started = time.monotonic()
        try:
            answer = self._send(url, body, headers)
        except _NotSent as not_sent:
            answer = _Answer(False, None, not_sent.error, not_sent.retryable)
        return WebhookResult(
            delivered=answer.delivered,
            status_code=answer.status_code,
            error=answer.error,
            retryable=answer.retryable,
            duration_ms=(time.monotonic() - started) * 1000,
        )

    def _send(self, url: str, body: bytes, headers: Mapping[str, str]) -> _Answer:
        try:
            target = parse_callback_url(url, self._allow_private)
        except CallbackUrlRefused as exc:
            raise _NotSent(str(exc), retryable=False) from exc
        failure: httpx.ConnectError | None = None
        for address in self._addresses(target):
            try:
                return self._post(target, address, url, body, headers)
            except httpx.ConnectError as exc:  # nothing was sent: another address may answer
                failure = exc
        raise _NotSent(f"could not connect to {target.host}: {_describe(failure)}", retryable=True)

    def _addresses(self, target: CallbackTarget) -> list[str]:
        """The checked addresses to connect to, in order."""
        if target.host_is_ip:  # checked by parse_callback_url
            return [target.host]
        try:
            addresses = list(dict.fromkeys(self._resolver(target.host, target.port)))
        except (OSError, UnicodeError) as exc:  # gaierror; UnicodeError: a label over 63 characters
            raise _NotSent(f"could not resolve {target.host}: {exc}", retryable=True) from exc
        if not addresses:
            raise _NotSent(f"{target.host} resolved to no address", retryable=True)
        for address in addresses:
            reason = never_allowed_reason(address) if self._allow_private else not_public_reason(address)
            if reason is not None:
                raise _NotSent(
                    f"callback_url refused: {target.host} resolves to {address}, {reason}, not public",
                    retryable=False,
                )
        return addresses

    def _post(
        self, target: CallbackTarget, address: str, url: str, body: bytes, headers: Mapping[str, str]
    ) -> _Answer:
        request_headers = {name: value for name, value in headers.items() if name.lower() not in _OWN_HEADERS}
        request_headers["Content-Type"] = "application/json"
        request_headers["User-Agent"] = USER_AGENT
        extensions: dict[str, str] = {}
        if not target.host_is_ip:
            request_headers["Host"] = target.host_header
            if target.scheme == "https":
                extensions["sni_hostname"] = target.host  # TLS: SNI and certificate check by name
        try:
            pinned = httpx.URL(url).copy_with(host=address)
        except httpx.InvalidURL as exc:
            raise _NotSent(f"callback_url refused: not a valid URL ({exc})", retryable=False) from exc
        with httpx.Client(
            verify=self._ssl_context,
            timeout=self._timeout_seconds,
            follow_redirects=False,
            trust_env=False,
        ) as client:
            request = client.build_request(
                "POST", pinned, content=body, headers=request_headers, extensions=extensions
            )
            try:
                response = client.send(request, stream=True)
                try:
                    self._read_some(response)
                finally:
                    response.close()
            except httpx.ConnectError:
                raise
            except httpx.TimeoutException as exc:
                raise _NotSent(f"timed out ({type(exc).__name__})", retryable=True) from exc
            except httpx.HTTPError as exc:  # the connection broke, the answer was not HTTP
                raise _NotSent(_describe(exc), retryable=True) from exc
        return _classify(response.status_code)

    def _read_some(self, response: httpx.Response) -> None:
        """Reads the body up to the byte limit or the deadline; the rest is never read. The status
        is the answer: a body that stalls or breaks off does not change it."""
        deadline = time.monotonic() + self._timeout_seconds
        received = 0
        try:
            for chunk in response.iter_raw():
                received += len(chunk)
                if received >= self._max_response_bytes or time.monotonic() > deadline:
                    return
        except httpx.HTTPError:
            return


@dataclass(frozen=True)
class _Answer:
    delivered: bool
    status_code: int | None
    error: str | None
    retryable: bool


class _NotSent(Exception):
    def __init__(self, error: str, retryable: bool) -> None:
        super().__init__(error)
        self.error = error
        self.retryable = retryable


def _classify(status: int) -> _Answer:
    if 200 <= status < 300:
        return _Answer(True, status, None, retryable=False)
    if 300 <= status < 400:
        return _Answer(False, status, f"HTTP {status}: redirects are not followed", retryable=False)
    retryable = status in {408, 429} or status >= 500
    return _Answer(False, status, f"HTTP {status}", retryable=retryable)


def _describe(exc: Exception | None) -> str:
    """An httpx error as text: its type, and its message (socket and TLS errors, no URL)."""
    if exc is None:
        return "no address"
    message = str(exc).strip()
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text[:300]


def _ssl_context(verify: ssl.SSLContext | str | bool) -> ssl.SSLContext:
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is False:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(verify, str):
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return ssl.create_default_context(cafile=certifi.where())
