"""A small HTTP client of the service's API for `notifyctl` (the local stack by default, or any
deployment with --api-url)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

DEFAULT_API_URL = "http://localhost:8000"
API_KEY_VARIABLE = "NOTIFYCTL_API_KEY"  # sent as X-API-Key when set (or given as --api-key)


def _api_key() -> dict[str, str]:
    key = os.environ.get(API_KEY_VARIABLE, "").strip()
    return {"X-API-Key": key} if key else {}


class ApiError(RuntimeError):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"HTTP {status}: {body.get('message', body)}")
        self.status = status
        self.body = body


def call(
    api_url: str,
    method: str,
    path: str,
    query: dict[str, str] | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    if not api_url.startswith(("http://", "https://")):
        raise ApiError(0, {"message": f"--api-url must be an http(s) URL, not {api_url!r}"})
    url = api_url.rstrip("/") + path
    if query:
        url += "?" + urllib.parse.urlencode(query)
    data = json.dumps(body).encode() if body is not None else (b"" if method in {"POST", "PUT"} else None)
    all_headers = {"Content-Type": "application/json", **_api_key(), **(headers or {})}
    request = urllib.request.Request(url, method=method, data=data, headers=all_headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - http(s) checked above
            answer: dict[str, Any] = json.loads(response.read() or b"{}")
            return answer
    except urllib.error.HTTPError as error:
        raise ApiError(error.code, json.loads(error.read() or b"{}")) from None


def list_all(
    api_url: str, status: str | None, channel: str | None, limit: int, page_size: int = 100
) -> list[dict[str, Any]]:
    """Newest first, following next_cursor until `limit` notifications."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(found) < limit:
        query = {"limit": str(min(page_size, limit - len(found)))}
        query.update({k: v for k, v in {"status": status, "channel": channel, "cursor": cursor}.items() if v})
        page = call(api_url, "GET", "/api/v1/notifications", query)
        found.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return found


def line(notification: dict[str, Any]) -> str:
    channels = ",".join(notification["channels"])
    used = notification.get("channel_used") or "-"
    reason = f"  ({notification['status_reason']})" if notification.get("status_reason") else ""
    return (
        f"{notification['created_at']}  {notification['id']}  {notification['status']:<10} "
        f"via {used:<8} of {channels:<20} rounds {notification['rounds']}{reason}"
    )
