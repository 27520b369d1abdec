"""Twilio status callbacks: the URL we give Twilio, and reading and verifying what Twilio posts to it.

When TWILIO_STATUS_CALLBACK_BASE is set, the SMS provider asks Twilio to report on each message at
`callback_url_for(base, notification_id)`: `<base>/api/v1/providers/twilio/status?notification_id=<id>`.
Twilio then POSTs form fields (MessageSid, MessageStatus, ErrorCode, AccountSid, To, From, ...) there,
with `X-Twilio-Signature`: base64(HMAC-SHA1(auth token, url + every field name and value, sorted by
name)), where url is the full URL Twilio requested, query string included.

`parse_and_verify` takes the API Gateway (REST, proxy) event of that request and checks the signature
before it trusts anything in it. The URL it checks against is:
- with `public_url` (the same base the provider gave Twilio): `public_url + event["path"] + "?" + query`
  (`path` is the resource path without the stage or a custom domain's base path);
- without: rebuilt from the request as the client made it: `X-Forwarded-Proto` (default https), the
  `Host` header, `requestContext.path` (which carries the stage, e.g. /Prod/api/v1/..., or a custom
  domain's base path; `path` when absent), and the query string. API Gateway hands the query over
  decoded: it is encoded again from `multiValueQueryStringParameters`, in order, as
  `callback_url_for` encodes it (form encoding), so the URLs we hand out round-trip exactly.
Twilio's validator accepts the URL with or without the scheme's default port.

Raised: `ForbiddenCallback` (answer 403) when no auth token is configured, the signature header is
missing or it does not match; `InvalidCallback` (answer 400, after the signature held) when the
notification_id query parameter, MessageSid or MessageStatus is missing. The signature is checked
first, so an unsigned request learns nothing about what a valid one carries (only a body that cannot
be read at all, bad base64 or not UTF-8, is refused as invalid before it).

The twilio package is imported inside `parse_and_verify`, not here: the API function imports this
module at cold start and most of its requests are not callbacks.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from notification_service.domain.receipts import ReceiptStatus, twilio_receipt

STATUS_PATH = "/api/v1/providers/twilio/status"
SIGNATURE_HEADER = "X-Twilio-Signature"
NOTIFICATION_ID_PARAMETER = "notification_id"


class ForbiddenCallback(Exception):
    """The request is not provably from Twilio (answer 403). `url` is the URL the signature was checked
    against, for the log: a proxy or a stage that changes the URL is the usual cause of a mismatch."""

    def __init__(self, reason: str, url: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.url = url


class InvalidCallback(ValueError):
    """A signed callback without a field we need (answer 400); `field` names it (query.notification_id,
    body.MessageSid, body.MessageStatus, or body when the body cannot be read)."""

    def __init__(self, field: str, reason: str = "field required") -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class TwilioCallback:
    notification_id: str
    message_sid: str
    message_status: str
    error_code: str | None  # Twilio's ErrorCode (e.g. 30003) on undelivered/failed; None when absent
    params: dict[str, str]  # every form field, as signed

    @property
    def receipt(self) -> ReceiptStatus | None:
        """The final state this callback reports; None when it is not final (queued, sent, ...)."""
        return twilio_receipt(self.message_status)


def callback_url_for(base_url: str, notification_id: str) -> str:
    """The StatusCallback URL for one notification; `base_url` is the API's public base (stage included)."""
    query = urlencode({NOTIFICATION_ID_PARAMETER: notification_id})
    return f"{base_url.rstrip('/')}{STATUS_PATH}?{query}"


def parse_and_verify(event: Mapping[str, Any], auth_token: str, public_url: str | None) -> TwilioCallback:
    """The callback in an API Gateway proxy event, once its X-Twilio-Signature holds."""
    if not auth_token:
        raise ForbiddenCallback("no auth token configured")
    signature = _header(event, SIGNATURE_HEADER)
    if not signature:
        raise ForbiddenCallback("missing signature")
    params = dict(parse_qsl(_body_text(event), keep_blank_values=True))  # Twilio sends single values
    url = signed_url(event, public_url)

    from twilio.request_validator import RequestValidator  # ~1 ms after the API's imports; 23 ms alone

    if not RequestValidator(auth_token).validate(url, params, signature):
        raise ForbiddenCallback("signature does not match", url)
    query = event.get("queryStringParameters") or {}
    notification_id = str(query.get(NOTIFICATION_ID_PARAMETER) or "")
    if not notification_id:
        raise InvalidCallback(f"query.{NOTIFICATION_ID_PARAMETER}")
    for name in ("MessageSid", "MessageStatus"):
        if not params.get(name):
            raise InvalidCallback(f"body.{name}")
    return TwilioCallback(
        notification_id=notification_id,
        message_sid=params["MessageSid"],
        message_status=params["MessageStatus"],
        error_code=params.get("ErrorCode") or None,
        params=params,
    )


def signed_url(event: Mapping[str, Any], public_url: str | None) -> str:
    """The full URL Twilio requested (and signed), as described in the module docstring."""
    query = _query_string(event)
    suffix = f"?{query}" if query else ""
    if public_url:
        return f"{public_url.rstrip('/')}{event.get('path') or ''}{suffix}"
    proto = (_header(event, "X-Forwarded-Proto") or "https").split(",")[0].strip()
    host = _header(event, "Host") or ""
    context = event.get("requestContext") or {}
    path = context.get("path") or event.get("path") or ""
    return f"{proto}://{host}{path}{suffix}"


def _header(event: Mapping[str, Any], name: str) -> str | None:
    wanted = name.lower()
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == wanted and value is not None:
            return str(value)
    for key, values in (event.get("multiValueHeaders") or {}).items():
        if key.lower() == wanted and values:
            return str(values[-1])
    return None


def _body_text(event: Mapping[str, Any]) -> str:
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return str(body)
    try:
        return base64.b64decode(body, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidCallback("body", "not base64-encoded UTF-8 form data") from None


def _query_string(event: Mapping[str, Any]) -> str:
    multi: Mapping[str, list[str]] | None = event.get("multiValueQueryStringParameters")
    if multi:
        return urlencode([(name, value) for name, values in multi.items() for value in values])
    return urlencode(list((event.get("queryStringParameters") or {}).items()))
