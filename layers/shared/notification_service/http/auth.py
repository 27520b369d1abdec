"""Who is calling: the X-API-Key of an API Gateway proxy event, checked before any route runs.

Open to all: liveness, readiness, the API's own documentation, the admin page's files (the page asks
for a key and sends it with its API calls), and the provider receipt endpoints
(`/api/v1/providers/...`), which the providers sign with their own credentials instead.

With API_KEYS configured, the key must hash to one of its entries, whose name is the caller. Without
it, a deployed API relies on API Gateway (it let the request through only with a valid key; the
caller is that key's id, from the request context), and the local stack runs with auth off: every
caller is ANONYMOUS."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from notification_service.domain.api_keys import ANONYMOUS, HEADER, ApiKeyEntry, identify

PUBLIC_PATHS = frozenset({"/health", "/ready", "/docs", "/openapi.json", "/admin"})
PUBLIC_PREFIXES = ("/api/v1/providers/",)
# The admin page's script, style and settings (one path segment; the page asks for the key itself)
ADMIN_FILE = re.compile(r"^/admin/[A-Za-z0-9_-]+\.[a-z]+$")


@dataclass(frozen=True)
class Unauthorized:
    reason: str  # for the error body's `details`: "missing" or "not a known key"


def is_public(path: str) -> bool:
    normalized = "/" + path.strip("/")
    return (
        normalized in PUBLIC_PATHS
        or normalized.startswith(PUBLIC_PREFIXES)
        or ADMIN_FILE.match(normalized) is not None
    )


def header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    """A header's value, whatever the case of its name."""
    wanted = name.lower()
    return next((str(v) for k, v in (headers or {}).items() if k.lower() == wanted), None)


def caller_of(event: Mapping[str, Any], entries: tuple[ApiKeyEntry, ...]) -> str | Unauthorized:
    """The caller's name, or why it is refused. Public paths are callable by anyone (ANONYMOUS)."""
    if is_public(str(event.get("path") or "/")):
        return ANONYMOUS
    presented = header(event.get("headers"), HEADER)
    if entries:
        if not presented:
            return Unauthorized("missing")
        name = identify(entries, presented.strip())
        return name if name is not None else Unauthorized("not a known key")
    identity = (event.get("requestContext") or {}).get("identity") or {}
    gateway_key_id = identity.get("apiKeyId")
    return str(gateway_key_id) if gateway_key_id else ANONYMOUS
