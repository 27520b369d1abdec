"""API keys: who is calling, and so whose notifications a request may see.

Configured as `API_KEYS`: comma-separated `name:sha256hex` entries, the SHA-256 of each key and never
the key itself, so a leaked configuration does not leak a key. A presented key is hashed and compared
with every entry in constant time (hmac.compare_digest, no early exit), so the answer's timing says
nothing about which entry came close. The entry's name is the caller: it owns the notifications it
creates and scopes its Idempotency-Keys.

No entries configured means auth is off: every caller is ANONYMOUS (the local stack says so, loudly).
Deployed behind API Gateway API keys, the gateway checks the key and the caller is its key id."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

HEADER = "X-API-Key"
ANONYMOUS = "anonymous"  # the caller when auth is off; owns what was created without a key
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
KEY_PREFIX = "nsk_"


class InvalidApiKeyEntry(ValueError):
    """An API_KEYS entry that is not `name:sha256hex`."""


@dataclass(frozen=True)
class ApiKeyEntry:
    name: str
    sha256: str


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_entries(value: str) -> tuple[ApiKeyEntry, ...]:
    """`name:sha256hex,...` (spaces around entries ignored); raises InvalidApiKeyEntry naming the
    entry by position (never echoing a hash that might be a key pasted by mistake)."""
    entries: list[ApiKeyEntry] = []
    names: set[str] = set()
    for position, raw in enumerate((part.strip() for part in value.split(",")), start=1):
        if not raw:
            continue
        name, sep, digest = raw.partition(":")
        name, digest = name.strip(), digest.strip().lower()
        if not sep or not NAME_PATTERN.match(name):
            raise InvalidApiKeyEntry(
                f"entry {position} must be name:sha256hex with a name of 1-64 of A-Z a-z 0-9 _ . -"
            )
        if not _HEX64.match(digest):
            raise InvalidApiKeyEntry(
                f"entry {position} ({name}) must carry the SHA-256 of the key as 64 hex digits, "
                "not the key itself (notifyctl keys new NAME prints one)"
            )
        if name in names:
            raise InvalidApiKeyEntry(f"entry {position}: the name {name} appears twice")
        names.add(name)
        entries.append(ApiKeyEntry(name, digest))
    return tuple(entries)


def identify(entries: tuple[ApiKeyEntry, ...], presented: str | None) -> str | None:
    """The name of the entry whose hash matches the presented key, or None. Every entry is compared,
    whatever matched, so the time taken does not depend on where (or whether) the key matched."""
    if not presented:
        return None
    digest = key_hash(presented).encode()
    found: str | None = None
    for entry in entries:
        if hmac.compare_digest(digest, entry.sha256.encode()):
            found = entry.name
    return found


def new_key(name: str) -> tuple[str, str]:
    """A fresh random key (256 bits) and its API_KEYS entry."""
    if not NAME_PATTERN.match(name):
        raise InvalidApiKeyEntry("a key name is 1-64 of A-Z a-z 0-9 _ . -")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, f"{name}:{key_hash(key)}"
