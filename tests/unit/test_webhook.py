"""Delivery webhooks, the pure part: signature, event id, callback URL checks, public addresses."""

from __future__ import annotations

import hashlib
import hmac
import re
import types
from collections.abc import Callable
from typing import Any

import pytest
from notification_service.domain import webhook
from notification_service.domain.webhook import (
    SIGNATURE_HEADER,
    CallbackTarget,
    CallbackUrlRefused,
    check_callback_url,
    event_id,
    is_public_address,
    not_public_reason,
    parse_callback_url,
    sign,
    verify,
)

SECRET = "whsec_test"
BODY = b'{"id":"evt_1","status":"SENT"}'
TS = 1_700_000_000
# printf '1700000000.{"id":"evt_1","status":"SENT"}' | openssl dgst -sha256 -hmac whsec_test
KNOWN_V1 = "3dfb2e05e9c5320b3e6d50afb112d0b1e7554ef12601c0917a2a5192e5f8137e"


def _v1(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


# --- sign / verify -----------------------------------------------------------------------------


def test_header_name() -> None:
    assert SIGNATURE_HEADER == "X-Signature"


def test_sign_matches_a_known_vector() -> None:
    assert sign(SECRET, BODY, TS) == f"t={TS},v1={KNOWN_V1}"
    assert _v1(SECRET, BODY, TS) == KNOWN_V1  # the test's own HMAC agrees with openssl


@pytest.mark.parametrize(
    ("secret", "body", "timestamp"),
    [("s", b"", 0), ("whsec_\u00e9", b"\x00\xff binary", 1), (SECRET, b"{}" * 10_000, 2_000_000_000)],
)
def test_sign_is_hmac_sha256_of_timestamp_dot_body(secret: str, body: bytes, timestamp: int) -> None:
    assert sign(secret, body, timestamp) == f"t={timestamp},v1={_v1(secret, body, timestamp)}"


def test_round_trip() -> None:
    assert verify(SECRET, BODY, sign(SECRET, BODY, TS), now=TS)


@pytest.mark.parametrize(
    ("secret", "body", "header"),
    [
        (SECRET, BODY + b" ", sign(SECRET, BODY, TS)),  # body changed
        (SECRET, b'{"id":"evt_1","status":"FAILED"}', sign(SECRET, BODY, TS)),
        (SECRET, BODY, f"t={TS + 1},v1={KNOWN_V1}"),  # timestamp changed
        ("whsec_other", BODY, sign(SECRET, BODY, TS)),  # another secret
        (SECRET, BODY, f"t={TS},v1={KNOWN_V1.upper()}"),
        (SECRET, BODY, f"t={TS},v1={KNOWN_V1[:-1]}"),
        (SECRET, BODY, f"t={TS},v0={KNOWN_V1}"),  # only v1 counts
    ],
)
def test_tampering_fails(secret: str, body: bytes, header: str) -> None:
    assert not verify(secret, body, header, now=TS)


def test_tolerance_both_ways() -> None:
    header = sign(SECRET, BODY, TS)

    assert verify(SECRET, BODY, header, now=TS + 300)
    assert verify(SECRET, BODY, header, now=TS - 300)
    assert not verify(SECRET, BODY, header, now=TS + 301)  # a replay
    assert not verify(SECRET, BODY, header, now=TS - 301)  # from the future
    assert verify(SECRET, BODY, header, now=TS + 3600, tolerance_seconds=3600)
    assert not verify(SECRET, BODY, header, now=TS + 1, tolerance_seconds=0)


@pytest.mark.parametrize(
    "header",
    [
        "",
        ",",
        "garbage",
        "t",
        "t=,v1=",
        f"v1={KNOWN_V1}",  # no timestamp
        f"t={TS}",  # no signature
        f"t={TS},v1=",
        f"t=abc,v1={KNOWN_V1}",
        f"t=-{TS},v1={KNOWN_V1}",
        f"t={TS}.0,v1={KNOWN_V1}",
        f"t={TS},t={TS},v1={KNOWN_V1}",  # ambiguous
        f"t=\u0661\u0667\u0660\u0660,v1={KNOWN_V1}",  # Arabic-Indic digits: isdigit() but not ASCII
        f"t={'9' * 5000},v1={KNOWN_V1}",  # int() would refuse more than 4300 digits
        f"t={TS},v1=\u00e9\u00e9",  # compare_digest raises on non-ASCII str: must be skipped
        f"t={TS},v1=\ud800",
        f"t={TS};v1={KNOWN_V1}",
        "\x00\x01\x02",
    ],
)
def test_malformed_headers_are_false_never_an_exception(header: str) -> None:
    assert verify(SECRET, BODY, header, now=TS) is False


def test_whitespace_around_entries_is_accepted() -> None:
    assert verify(SECRET, BODY, f" t={TS} , v1={KNOWN_V1} ", now=TS)


def test_several_v1_entries_one_match_is_enough() -> None:
    # GIVEN a header signed with the old and the new secret during a rotation
    header = f"t={TS},v1={_v1('whsec_old', BODY, TS)},v1={_v1('whsec_new', BODY, TS)},v0=deadbeef"

    # THEN a receiver with either secret accepts it, and one with a third does not
    assert verify("whsec_old", BODY, header, now=TS)
    assert verify("whsec_new", BODY, header, now=TS)
    assert not verify("whsec_neither", BODY, header, now=TS)


def _recipe_source() -> str:
    """The README's standalone recipe: the indented block after "::" in the module docstring."""
    assert webhook.__doc__ is not None
    block: list[str] = []
    for line in webhook.__doc__.split("::\n", 1)[1].splitlines():
        if line.strip() and not line.startswith("    "):
            break
        block.append(line[4:])
    return "\n".join(block).strip() + "\n"


def _docstring_recipe(now: int) -> Callable[..., bool]:
    """The recipe, run, with a fixed clock."""
    namespace: dict[str, Any] = {}
    exec(_recipe_source(), namespace)
    namespace["time"] = types.SimpleNamespace(time=lambda: float(now))
    recipe: Callable[..., bool] = namespace["verify"]
    return recipe


@pytest.mark.parametrize(
    "header",
    [
        sign(SECRET, BODY, TS),
        sign(SECRET, BODY, TS - 299),
        sign(SECRET, BODY, TS - 301),
        sign(SECRET, BODY, TS + 301),
        sign("whsec_other", BODY, TS),
        f"t={TS},v1=00,v1={KNOWN_V1}",
        f"t=abc,v1={KNOWN_V1}",
        f"t={TS},t={TS},v1={KNOWN_V1}",
        f"t={'9' * 5000},v1={KNOWN_V1}",
        f"t={TS},v1=\u00e9",
        "",
    ],
)
def test_the_docstring_recipe_agrees_with_verify(header: str) -> None:
    recipe = _docstring_recipe(now=TS)

    assert recipe(SECRET, BODY, header) == verify(SECRET, BODY, header, now=TS)


def test_the_docstring_recipe_is_short_and_stdlib_only() -> None:
    source = _recipe_source()

    assert source.startswith("import hashlib, hmac, time\n")
    assert "import" not in source.split("\n", 1)[1]
    assert len([line for line in source.splitlines() if line.strip()]) <= 12


# --- event id ----------------------------------------------------------------------------------


def test_event_id_is_stable_across_calls_and_releases() -> None:
    assert event_id("n-123", "SENT") == event_id("n-123", "SENT")
    assert event_id("n-123", "SENT") == "evt_c349c890529e52f5b91c9a14286055cd"


def test_event_id_differs_per_notification_and_status() -> None:
    ids = {event_id("n-1", "SENT"), event_id("n-1", "FAILED"), event_id("n-2", "SENT")}

    assert len(ids) == 3
    assert all(re.fullmatch(r"evt_[0-9a-f]{32}", value) for value in ids)


def test_event_id_is_unambiguous_whatever_the_id_contains() -> None:
    assert event_id("a:b", "c") != event_id("a", "b:c")
    assert event_id('a", "b', "c") != event_id("a", 'b", "c')


# --- callback URLs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/notify",
        "https://hooks.example.com:8443/notify?token=abc#ignored",
        "https://HOOKS.Example.com./notify",
        "https://8.8.8.8/hook",
        "https://[2606:4700:4700::1111]/hook",
        "https://[::ffff:8.8.8.8]/hook",  # mapped, judged by the public IPv4 address
        "https://sub_domain.example.com/",
    ],
)
def test_public_https_urls_pass(url: str) -> None:
    check_callback_url(url, allow_private=False)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/", "scheme must be https"),
        ("ftp://hooks.example.com/", "scheme must be https"),
        ("file:///etc/passwd", "scheme must be https"),
        ("javascript:alert(1)", "scheme must be https"),
        ("hooks.example.com/notify", "scheme must be https"),
        ("http://169.254.169.254/latest/meta-data/", "address 169.254.169.254 is link-local, not public"),
        ("https://169.254.169.254/", "address 169.254.169.254 is link-local, not public"),
        ("https://127.0.0.1/", "address 127.0.0.1 is loopback, not public"),
        ("https://10.1.2.3/", "address 10.1.2.3 is private, not public"),
        ("https://192.168.0.1/", "address 192.168.0.1 is private, not public"),
        ("https://172.16.0.1/", "address 172.16.0.1 is private, not public"),
        ("https://100.64.0.1/", "address 100.64.0.1 is not globally routed, not public"),
        ("https://0.0.0.0/", "address 0.0.0.0 is unspecified, not public"),
        ("https://224.0.0.1/", "address 224.0.0.1 is multicast, not public"),
        ("https://[::1]/", "address ::1 is loopback, not public"),
        ("https://[fe80::1]/", "address fe80::1 is link-local, not public"),
        ("https://[fd00:ec2::254]/", "address fd00:ec2::254 is private, not public"),
        ("https://[::ffff:169.254.169.254]/", "address ::ffff:169.254.169.254 is link-local, not public"),
        ("https://[::ffff:a9fe:a9fe]/", "address ::ffff:a9fe:a9fe is link-local, not public"),
        ("https://[::ffff:127.0.0.1]/", "address ::ffff:127.0.0.1 is loopback, not public"),
        ("https://[64:ff9b::a9fe:a9fe]/", "address 64:ff9b::a9fe:a9fe is link-local, not public"),  # NAT64
        ("https://[2002:a9fe:a9fe::1]/", "address 2002:a9fe:a9fe::1 is link-local, not public"),  # 6to4
        ("https://localhost/", "localhost is not public"),
        ("https://api.localhost/", "localhost is not public"),
        ("https://2130706433/", "a numeric host must be a dotted-quad IPv4 address"),  # 127.0.0.1
        ("https://0x7f.1/", "a numeric host must be a dotted-quad IPv4 address"),
        ("https://127.1/", "a numeric host must be a dotted-quad IPv4 address"),
        ("https://0177.0.0.1/", "a numeric host must be a dotted-quad IPv4 address"),
        ("https://user:pass@hooks.example.com/", "credentials in the URL (user:pass@) are not allowed"),
        ("https://user@hooks.example.com/", "credentials in the URL (user:pass@) are not allowed"),
        ("https://hooks.example.com@169.254.169.254/", "credentials in the URL"),
        ("https:///path", "no host"),
        ("https://", "no host"),
        ("https://:443/", "no host"),
        ("https://hooks.example.com:0/", "port must be between 1 and 65535"),
        ("https://hooks.example.com:65536/", "port must be between 1 and 65535"),
        ("https://hooks.example.com:https/", "port must be between 1 and 65535"),
        ("https://[::1/", "not a valid URL"),
        ("https://hooks.example.com\t.evil/", "contains whitespace or control characters"),
        ("https://hooks.example.com/\r\nX-Injected: 1", "contains whitespace or control characters"),
        ("https://hooks.exa mple.com/", "contains whitespace or control characters"),
        ("https://h\u00f6oks.example.com/", "host is not a valid host name"),
        ("https://hooks%2eexample.com/", "host is not a valid host name"),
        ("https://hooks.example.com" + "/a" * 1100, "longer than 2048 characters"),
    ],
)
def test_refused_urls_name_their_reason(url: str, reason: str) -> None:
    with pytest.raises(CallbackUrlRefused, match=re.escape(reason)) as refused:
        check_callback_url(url, allow_private=False)

    assert refused.value.reason.startswith(reason)
    assert str(refused.value) == f"callback_url refused: {refused.value.reason}"
    assert isinstance(refused.value, ValueError)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/sink",
        "https://127.0.0.1:8443/sink",
        "http://localhost:9000/sink",
        "http://[::1]:9000/sink",
        "http://10.0.0.5/sink",
        "http://sink/hook",
    ],
)
def test_allow_private_accepts_http_and_private_hosts(url: str) -> None:
    check_callback_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:169.254.169.254]/",
        "http://0.0.0.0:8080/",
    ],
)
def test_the_metadata_service_is_refused_even_where_private_addresses_are_allowed(url: str) -> None:
    with pytest.raises(CallbackUrlRefused) as refused:
        check_callback_url(url, allow_private=True)
    assert "not public" in refused.value.reason


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://127.0.0.1/", "scheme must be https"),
        ("http://user:pw@127.0.0.1/", "credentials"),
        ("http://127.0.0.1:0/", "port must be between 1 and 65535"),
        ("http://2130706433/", "a numeric host must be a dotted-quad IPv4 address"),
    ],
)
def test_allow_private_keeps_the_other_checks(url: str, reason: str) -> None:
    with pytest.raises(CallbackUrlRefused, match=re.escape(reason)):
        check_callback_url(url, allow_private=True)


def test_exactly_2048_characters_is_allowed() -> None:
    prefix = "https://hooks.example.com/"
    url = prefix + "a" * (2048 - len(prefix))

    check_callback_url(url, allow_private=False)
    with pytest.raises(CallbackUrlRefused, match="longer than 2048"):
        check_callback_url(url + "a", allow_private=False)


@pytest.mark.parametrize(
    ("url", "target", "host_header"),
    [
        (
            "https://Hooks.Example.com./x",
            CallbackTarget("https", "hooks.example.com", 443, host_is_ip=False, explicit_port=False),
            "hooks.example.com",
        ),
        (
            "https://hooks.example.com:8443/x",
            CallbackTarget("https", "hooks.example.com", 8443, host_is_ip=False, explicit_port=True),
            "hooks.example.com:8443",
        ),
        (
            "http://[::1]:9000/x",
            CallbackTarget("http", "::1", 9000, host_is_ip=True, explicit_port=True),
            "[::1]:9000",
        ),
        (
            "HTTP://127.0.0.1/x",
            CallbackTarget("http", "127.0.0.1", 80, host_is_ip=True, explicit_port=False),
            "127.0.0.1",
        ),
    ],
)
def test_parse_callback_url_gives_the_target(url: str, target: CallbackTarget, host_header: str) -> None:
    parsed = parse_callback_url(url, allow_private=True)

    assert parsed == target
    assert parsed.host_header == host_header


# --- public addresses --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ip",
    ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"],
)
def test_public_addresses(ip: str) -> None:
    assert is_public_address(ip)
    assert not_public_reason(ip) is None


@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("10.0.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("169.254.170.2", "link-local"),  # the ECS task metadata endpoint
        ("100.64.0.1", "not globally routed"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "private"),
        ("192.0.2.1", "private"),  # documentation
        ("198.18.0.1", "private"),  # benchmarking
        ("224.0.0.251", "multicast"),
        ("240.0.0.1", "private"),
        ("255.255.255.255", "private"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("fc00::1", "private"),
        ("fd00:ec2::254", "private"),  # the EC2 metadata endpoint over IPv6
        ("ff02::1", "multicast"),
        ("2001:db8::1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:10.0.0.1", "private"),
        ("::127.0.0.1", "reserved"),  # IPv4-compatible (deprecated)
        ("64:ff9b::7f00:1", "loopback"),
        ("64:ff9b:1::a00:1", "reserved"),  # local-use NAT64
        ("2002:7f00:1::", "loopback"),
        ("2001::1", "private"),  # Teredo
        ("not-an-ip", "not an IP address"),
        ("", "not an IP address"),
        ("1.2.3", "not an IP address"),
    ],
)
def test_addresses_that_are_not_public(ip: str, reason: str) -> None:
    assert not is_public_address(ip)
    assert not_public_reason(ip) == reason
