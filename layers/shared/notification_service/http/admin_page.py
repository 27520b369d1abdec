"""The admin page's files (notification_service/admin/static): one HTML page, its script and its
style sheet, served by the API at /admin and /admin/<file>. No data is in them: the page calls the
API with the operator's key, like any other client, so the files themselves are public."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

ADMIN_PATH = "/admin"
PAGE = "index.html"
CONFIG = "config.json"  # {"api_key_required": bool}: whether to ask for the key before any call
CONTENT_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "admin.js": "text/javascript; charset=utf-8",
    "admin.css": "text/css; charset=utf-8",
}
# Only this origin's own files run or load; the page cannot be framed (clickjacking) and sends no
# referrer (its URL is not secret, but there is no reason to tell).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidated: a deploy's new script is used at once
}


@dataclass(frozen=True)
class Asset:
    content_type: str
    body: str


class UnknownAsset(LookupError):
    pass


@cache
def asset(name: str) -> Asset:
    """One of the page's files by name (raises UnknownAsset for anything else)."""
    content_type = CONTENT_TYPES.get(name)
    if content_type is None:
        raise UnknownAsset(name)
    body = resources.files("notification_service.admin").joinpath("static", name).read_text("utf-8")
    return Asset(content_type, body)
