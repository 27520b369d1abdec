"""Provider receipts: Twilio's MessageStatus values mapped to a final state, the StatusCallback URL, and
reading and verifying a callback from an API Gateway event (signatures made by the twilio package)."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from notification_service.domain.receipts import ReceiptStatus, twilio_receipt
from notification_service.http.twilio_callback import (
    STATUS_PATH,
    ForbiddenCallback,
    InvalidCallback,
    TwilioCallback,
    callback_url_for,
    parse_and_verify,
    signed_url,
)
from twilio.request_validator import RequestValidator

from infra.api_gateway import build_event

TOKEN = "unit-twilio-auth-token"
NOTIFICATION_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
HOST = "abc123.execute-api.us-east-1.amazonaws.com"
BASE = f"https://{HOST}/Prod"
FORM = {
    "MessageSid": "SM" + "a" * 32,
    "MessageStatus": "delivered",
    "AccountSid": "AC" + "b" * 32,
    "To": "+447911123456",
    "From": "+15005550006",
    "ApiVersion": "2010-04-01",
}


# --- the mapping ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "receipt"),
    [
        ("delivered", ReceiptStatus.DELIVERED),
        ("undelivered", ReceiptStatus.UNDELIVERED),
        ("failed", ReceiptStatus.UNDELIVERED),
        ("Delivered", ReceiptStatus.DELIVERED),
        (" undelivered ", ReceiptStatus.UNDELIVERED),
        ("accepted", None),
        ("scheduled", None),
        ("queued", None),
        ("sending", None),
        ("sent", None),
        ("read", None),
        ("partially_delivered", None),
        ("canceled", None),
        ("receiving", None),
        ("received", None),
        ("", None),
        ("teleported", None),
    ],
)
def test_only_delivered_undelivered_and_failed_are_final(status: str, receipt: ReceiptStatus | None) -> None:
    assert twilio_receipt(status) is receipt


def test_receipt_statuses_are_their_names() -> None:
    assert [s.value for s in ReceiptStatus] == ["delivered", "undelivered"]


# --- the StatusCallback URL ----------------------------------------------------------------------------


def test_callback_url_names_the_notification() -> None:
    assert callback_url_for(BASE, NOTIFICATION_ID) == (
        f"{BASE}/api/v1/providers/twilio/status?notification_id={NOTIFICATION_ID}"
    )


def test_callback_url_ignores_a_trailing_slash_and_encodes_the_id() -> None:
    assert callback_url_for(BASE + "/", "a b&c=d/é") == (
        f"{BASE}{STATUS_PATH}?notification_id=a+b%26c%3Dd%2F%C3%A9"
    )


# --- parse_and_verify ----------------------------------------------------------------------------------


def sign(url: str, form: dict[str, str], token: str = TOKEN) -> str:
    signature: str = RequestValidator(token).compute_signature(url, form)
    return signature


def gateway_event(
    url: str,
    form: dict[str, str],
    headers: dict[str, str],
    stage: str = "Prod",
) -> dict[str, Any]:
    """What API Gateway hands the function for a POST to `url` (the stage being the URL's first
    segment), through the local gateway's own event builder."""
    split = urlsplit(url)
    path = split.path.removeprefix(f"/{stage}")
    raw_path = f"{path}?{split.query}" if split.query else path
    return build_event(
        "POST",
        raw_path,
        [
            ("Host", split.netloc),
            ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
            *headers.items(),
        ],
        urlencode(form).encode(),
        "54.172.60.1",
        resource="/api/v1/providers/twilio/status",
        stage=stage,
    )


def signed_event(
    form: dict[str, str] = FORM, url: str | None = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    url = url or callback_url_for(BASE, NOTIFICATION_ID)
    return gateway_event(
        url, form, {"X-Forwarded-Proto": "https", "X-Twilio-Signature": sign(url, form), **(headers or {})}
    )


def test_a_signed_callback_is_read_with_the_public_url() -> None:
    event = signed_event()

    callback = parse_and_verify(event, TOKEN, public_url=BASE)

    assert callback == TwilioCallback(
        notification_id=NOTIFICATION_ID,
        message_sid=FORM["MessageSid"],
        message_status="delivered",
        error_code=None,
        params=FORM,
    )
    assert callback.receipt is ReceiptStatus.DELIVERED


def test_the_public_url_may_end_with_a_slash() -> None:
    assert parse_and_verify(signed_event(), TOKEN, public_url=BASE + "/").message_sid == FORM["MessageSid"]


def test_without_a_public_url_the_url_is_rebuilt_from_the_request_with_its_stage() -> None:
    event = signed_event()
    assert event["path"] == STATUS_PATH  # API Gateway: the stage only in requestContext.path
    assert event["requestContext"]["path"] == f"/Prod{STATUS_PATH}"

    callback = parse_and_verify(event, TOKEN, public_url=None)

    assert callback.notification_id == NOTIFICATION_ID
    assert signed_url(event, None) == callback_url_for(BASE, NOTIFICATION_ID)


def test_the_rebuilt_url_takes_the_scheme_from_x_forwarded_proto() -> None:
    url = f"http://127.0.0.1:3000/Prod{STATUS_PATH}?notification_id={NOTIFICATION_ID}"
    event = signed_event(url=url, headers={"X-Forwarded-Proto": "http"})

    assert parse_and_verify(event, TOKEN, public_url=None).notification_id == NOTIFICATION_ID


def test_the_rebuilt_url_defaults_to_https() -> None:
    url = callback_url_for(BASE, NOTIFICATION_ID)
    event = gateway_event(url, FORM, {"X-Twilio-Signature": sign(url, FORM)})

    assert signed_url(event, None) == url
    assert parse_and_verify(event, TOKEN, public_url=None).message_status == "delivered"


def test_the_rebuilt_url_falls_back_to_path_without_a_request_context() -> None:
    url = f"https://{HOST}{STATUS_PATH}?notification_id={NOTIFICATION_ID}"
    event = signed_event(url=url)
    del event["requestContext"]

    assert parse_and_verify(event, TOKEN, public_url=None).notification_id == NOTIFICATION_ID


def test_the_query_string_is_encoded_again_in_its_order() -> None:
    url = f"{BASE}{STATUS_PATH}?notification_id=n%2F1&attempt=2&attempt=3&note=a+b"
    event = signed_event(url=url)

    assert signed_url(event, None) == url
    assert parse_and_verify(event, TOKEN, public_url=BASE).notification_id == "n/1"


def test_headers_are_case_insensitive() -> None:
    event = signed_event()
    signature = event["headers"].pop("X-Twilio-Signature")
    event["headers"]["x-twilio-signature"] = signature
    event["headers"]["host"] = event["headers"].pop("Host")
    event["headers"]["x-forwarded-proto"] = event["headers"].pop("X-Forwarded-Proto")
    event["multiValueHeaders"] = None

    assert parse_and_verify(event, TOKEN, public_url=None).message_sid == FORM["MessageSid"]


def test_a_plain_text_body_and_a_base64_body_read_the_same() -> None:
    encoded = signed_event()
    assert encoded["isBase64Encoded"]  # a form body is binary to API Gateway unless configured
    plain = {**encoded, "body": base64.b64decode(encoded["body"]).decode(), "isBase64Encoded": False}

    assert parse_and_verify(encoded, TOKEN, BASE) == parse_and_verify(plain, TOKEN, BASE)


def test_an_undelivered_callback_carries_its_error_code() -> None:
    form = {**FORM, "MessageStatus": "undelivered", "ErrorCode": "30003"}

    callback = parse_and_verify(signed_event(form), TOKEN, public_url=BASE)

    assert (callback.receipt, callback.error_code) == (ReceiptStatus.UNDELIVERED, "30003")


def test_blank_fields_are_kept_and_the_last_value_wins() -> None:
    form = {**FORM, "ErrorCode": ""}
    url = callback_url_for(BASE, NOTIFICATION_ID)
    event = signed_event(form)
    repeated = urlencode([*form.items(), ("MessageStatus", "sent")])
    event.update(
        body=repeated,
        isBase64Encoded=False,
        headers={**event["headers"], "X-Twilio-Signature": sign(url, {**form, "MessageStatus": "sent"})},
    )
    event["multiValueHeaders"] = None

    callback = parse_and_verify(event, TOKEN, public_url=BASE)

    assert (callback.message_status, callback.error_code, callback.params["ErrorCode"]) == ("sent", None, "")
    assert callback.receipt is None


def test_a_wrong_signature_is_forbidden() -> None:
    event = signed_event()
    event["headers"]["X-Twilio-Signature"] = sign(callback_url_for(BASE, NOTIFICATION_ID), FORM, "other")

    with pytest.raises(ForbiddenCallback) as caught:
        parse_and_verify(event, TOKEN, public_url=BASE)

    assert caught.value.reason == "signature does not match"
    assert caught.value.url == callback_url_for(BASE, NOTIFICATION_ID)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(
            lambda e: e.update(body=base64.b64encode(b"MessageStatus=delivered").decode()), id="body"
        ),
        pytest.param(
            lambda e: e.update(multiValueQueryStringParameters={"notification_id": ["other"]}), id="query"
        ),
        pytest.param(lambda e: e["requestContext"].update(path="/Dev" + STATUS_PATH), id="stage"),
        pytest.param(lambda e: e["headers"].update(Host="evil.example.com"), id="host"),
    ],
)
def test_anything_changed_after_signing_is_forbidden(tamper: Any) -> None:
    event = signed_event()
    event["multiValueHeaders"] = None
    tamper(event)

    with pytest.raises(ForbiddenCallback, match="signature does not match"):
        parse_and_verify(event, TOKEN, public_url=None)


def test_a_signature_for_another_url_is_forbidden_with_the_public_url() -> None:
    event = signed_event()

    with pytest.raises(ForbiddenCallback, match="signature does not match"):
        parse_and_verify(event, TOKEN, public_url=f"https://{HOST}/Dev")


def test_a_missing_signature_is_forbidden() -> None:
    event = signed_event()
    del event["headers"]["X-Twilio-Signature"]
    del event["multiValueHeaders"]["X-Twilio-Signature"]

    with pytest.raises(ForbiddenCallback) as caught:
        parse_and_verify(event, TOKEN, public_url=BASE)

    assert caught.value.reason == "missing signature"


def test_without_an_auth_token_every_callback_is_forbidden() -> None:
    with pytest.raises(ForbiddenCallback) as caught:
        parse_and_verify(signed_event(), "", public_url=BASE)

    assert caught.value.reason == "no auth token configured"


@pytest.mark.parametrize("missing", ["MessageSid", "MessageStatus"])
def test_a_signed_callback_without_a_field_is_invalid(missing: str) -> None:
    form = {k: v for k, v in FORM.items() if k != missing}

    with pytest.raises(InvalidCallback) as caught:
        parse_and_verify(signed_event(form), TOKEN, public_url=BASE)

    assert caught.value.field == f"body.{missing}"
    assert str(caught.value) == f"body.{missing}: field required"


def test_a_signed_callback_without_a_notification_id_is_invalid() -> None:
    url = f"{BASE}{STATUS_PATH}"

    with pytest.raises(InvalidCallback) as caught:
        parse_and_verify(signed_event(url=url), TOKEN, public_url=BASE)

    assert caught.value.field == "query.notification_id"


def test_an_unsigned_callback_without_fields_is_forbidden_not_invalid() -> None:
    event = signed_event({"MessageStatus": "delivered"}, url=f"{BASE}{STATUS_PATH}")
    event["headers"]["X-Twilio-Signature"] = "bm90IGEgc2lnbmF0dXJl"

    with pytest.raises(ForbiddenCallback):
        parse_and_verify(event, TOKEN, public_url=BASE)


def test_a_body_that_is_not_base64_is_invalid() -> None:
    event = signed_event()
    event["body"] = "%%% not base64 %%%"

    with pytest.raises(InvalidCallback) as caught:
        parse_and_verify(event, TOKEN, public_url=BASE)

    assert caught.value.field == "body"
