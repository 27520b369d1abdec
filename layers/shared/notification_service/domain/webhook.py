"""Delivery webhooks: the signature, the event id and the static checks of a callback URL.

A notification may carry a ``callback_url``. On every terminal status the service POSTs a JSON event
there (adapters/webhook_sender.py sends it). This module is the pure part.

Signature, the way Stripe signs: ``X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``, where the
HMAC key is the webhook secret and the message is ``"<t>." + raw body`` (the timestamp exactly as it
appears in the header, a dot, then the body bytes as received, before any JSON parsing). A header may
carry several ``v1=`` entries (one per secret while a secret is being rotated): one match is enough.
The timestamp guards against replays: a receiver rejects a header older (or newer) than its tolerance.

A receiver needs only the standard library; this is the whole of ``verify`` below::

    import hashlib, hmac, time

    def verify(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
        items = [part.strip().partition("=") for part in header.split(",")]
        timestamps = [value for key, _, value in items if key == "t"]
        signatures = [value for key, _, value in items if key == "v1" and value.isascii()]
        if len(timestamps) != 1 or not (timestamps[0].isascii() and timestamps[0].isdigit()):
            return False
        if len(timestamps[0]) > 15 or abs(time.time() - int(timestamps[0])) > tolerance:
            return False
        signed = timestamps[0].encode() + b"." + body
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        return any(hmac.compare_digest(expected, signature) for signature in signatures)

Event id: the same notification reaching the same status gives the same id (uuid5 over both), so a
receiver can drop a redelivery it has already processed.

Callback URLs (SSRF guard, the static half): https only (http too when private webhooks are
allowed, for the local stack's own sinks), a host, no ``user:pass@``, at most 2048 characters, a port
in 1..65535, and an IP-literal host must be a public address unless private webhooks are allowed
(even then, never a link-local address such as the metadata service's 169.254.169.254). A host name
is judged later, by the addresses it resolves to, when the webhook is sent.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

SIGNATURE_HEADER = "X-Signature"
DEFAULT_TOLERANCE_SECONDS = 300
MAX_CALLBACK_URL_LENGTH = 2048

_EVENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "notification-service:webhook-event")
_MAX_TIMESTAMP_DIGITS = 15  # far beyond any real Unix time; keeps int() cheap on hostile input
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*", re.ASCII)
_NUMERIC_LABEL_RE = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)", re.ASCII | re.IGNORECASE)
_DEFAULT_PORTS = {"https": 443, "http": 80}


# --- signature ---------------------------------------------------------------------------------


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The X-Signature header value for `body` sent at `timestamp` (Unix seconds)."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(
    secret: str, body: bytes, header: str, now: int, tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS
) -> bool:
    """Whether `header` signs `body` with `secret` within `tolerance_seconds` of `now` (either way).
    Never raises: a malformed header (no or several ``t=``, a non-numeric timestamp, no ``v1=``) is
    False. The same logic as the stdlib snippet in this module's docstring."""
    items = [part.strip().partition("=") for part in header.split(",")]
    timestamps = [value for key, _, value in items if key == "t"]
    signatures = [value for key, _, value in items if key == "v1" and value.isascii()]
    if len(timestamps) != 1 or not (timestamps[0].isascii() and timestamps[0].isdigit()):
        return False
    if len(timestamps[0]) > _MAX_TIMESTAMP_DIGITS or abs(now - int(timestamps[0])) > tolerance_seconds:
        return False
    signed = timestamps[0].encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, signature) for signature in signatures)


def event_id(notification_id: str, status: str) -> str:
    """The id of the event "`notification_id` reached `status`": the same on every redelivery."""
    name = json.dumps([notification_id, str(status)])  # unambiguous, whatever the id contains
    return f"evt_{uuid.uuid5(_EVENT_NAMESPACE, name).hex}"


# --- callback URLs -----------------------------------------------------------------------------


class CallbackUrlRefused(ValueError):
    """A callback URL the service will not call; `reason` says why (safe to show to the API caller)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"callback_url refused: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class CallbackTarget:
    """Where a checked callback URL points. `host` is lower case, without brackets or a trailing dot;
    `port` is the effective port (the scheme's default when the URL names none)."""

    scheme: str
    host: str
    port: int
    host_is_ip: bool
    explicit_port: bool

    @property
    def host_header(self) -> str:
        """The Host header the URL implies (the port only when the URL names one)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.explicit_port else host


def check_callback_url(url: str, allow_private: bool) -> None:
    """Raises CallbackUrlRefused unless `url` passes the static checks (see the module docstring)."""
    parse_callback_url(url, allow_private)


def parse_callback_url(url: str, allow_private: bool) -> CallbackTarget:
    """check_callback_url, returning what the sender needs to resolve and connect."""
    if len(url) > MAX_CALLBACK_URL_LENGTH:
        raise CallbackUrlRefused(f"longer than {MAX_CALLBACK_URL_LENGTH} characters")
    if any(char.isspace() or not char.isprintable() for char in url):
        # urlsplit silently drops tabs and newlines: what it checks must be what gets called
        raise CallbackUrlRefused("contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        port = parts.port
    except ValueError as exc:  # an unclosed [IPv6 bracket, a non-numeric or out-of-range port
        reason = "port must be between 1 and 65535" if "port" in str(exc).lower() else "not a valid URL"
        raise CallbackUrlRefused(reason) from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise CallbackUrlRefused("scheme must be https")
    if "@" in parts.netloc:
        raise CallbackUrlRefused("credentials in the URL (user:pass@) are not allowed")
    host = (hostname or "").rstrip(".")
    if not host:
        raise CallbackUrlRefused("no host")
    if port is not None and not 1 <= port <= 65535:
        raise CallbackUrlRefused("port must be between 1 and 65535")
    address = _ip_literal(host)
    if address is None:
        _check_hostname(host, allow_private)
    else:
        why = _not_public(address) if not allow_private else _never_allowed(address)
        if why is not None:
            raise CallbackUrlRefused(f"address {host} is {why}, not public")
    if scheme == "http" and not allow_private:
        raise CallbackUrlRefused("scheme must be https")
    return CallbackTarget(
        scheme=scheme,
        host=host,
        port=port if port is not None else _DEFAULT_PORTS[scheme],
        host_is_ip=address is not None,
        explicit_port=port is not None,
    )


def _check_hostname(host: str, allow_private: bool) -> None:
    if not _HOSTNAME_RE.fullmatch(host):
        raise CallbackUrlRefused("host is not a valid host name (punycode for international names)")
    if _NUMERIC_LABEL_RE.fullmatch(host.rsplit(".", 1)[-1]):
        # "2130706433", "127.1", "0x7f.0.0.1": resolvers read these as IPv4 addresses
        raise CallbackUrlRefused("a numeric host must be a dotted-quad IPv4 address")
    if not allow_private and (host == "localhost" or host.endswith(".localhost")):
        raise CallbackUrlRefused("localhost is not public")


# --- addresses ---------------------------------------------------------------------------------

_AWS_IPV6_METADATA = ipaddress.IPv6Address("fd00:ec2::254")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: a public IPv4 address seen through DNS64


def is_public_address(ip: str) -> bool:
    """Whether `ip` (an IPv4 or IPv6 address as text) is a public, globally routed address. An
    IPv6 address that embeds an IPv4 one (mapped ::ffff:a.b.c.d, 6to4, NAT64) is judged by the
    IPv4 address. Text that is not an IP address is not public."""
    return not_public_reason(ip) is None


def not_public_reason(ip: str) -> str | None:
    """None for a public address; else why not ("loopback", "link-local", "private", ...)."""
    address = _ip_literal(ip)
    if address is None:
        return "not an IP address"
    return _not_public(address)


def never_allowed_reason(ip: str) -> str | None:
    """Why `ip` is refused even where private addresses are allowed (the local stack): link-local
    addresses (169.254.169.254 is the cloud metadata service, fe80::/10), the AWS IPv6 metadata
    address, and the unspecified address. None otherwise."""
    address = _ip_literal(ip)
    if address is None:
        return "not an IP address"
    return _never_allowed(address)


def _never_allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_link_local or address == _AWS_IPV6_METADATA:
        return "link-local (the metadata service)"
    if address.is_unspecified:
        return "unspecified"
    return None


def _ip_literal(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _not_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address.sixtofour is not None:
            address = address.sixtofour
        elif address in _NAT64:
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not globally routed", not address.is_global),  # 100.64.0.0/10 (carrier-grade NAT) and others
    )
    return next((name for name, failed in checks if failed), None)
