"""The HTTP contract over the real local stack: idempotency, bad input, docs, health."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.conftest import RunningStack

BODY = {"recipient": "user@example.com", "message": "Hello!"}


def table_items(stack: RunningStack) -> int:
    return int(stack.aws("dynamodb").scan(TableName=stack.table_name(), Select="COUNT")["Count"])


def test_an_idempotent_retry_answers_the_same_notification(stack: RunningStack) -> None:
    # GIVEN a request with a fresh Idempotency-Key
    key = {"Idempotency-Key": f"e2e-{uuid.uuid4()}"}
    before = table_items(stack)
    first = stack.post(BODY, key)
    # WHEN the client retries it
    again = stack.post(BODY, key)
    # THEN one notification exists and the retry says it was replayed
    assert (first.status, again.status) == (202, 202)
    assert again.json() == first.json()
    assert "Idempotency-Replayed" not in first.headers
    assert again.headers["Idempotency-Replayed"] == "true"
    assert table_items(stack) == before + 1
    assert stack.wait_terminal(first.json()["id"])["status"] == "sent"
    # AND the same key with another body is refused, naming the header
    other = stack.post({**BODY, "message": "changed"}, key)
    assert other.status == 422
    assert other.json()["details"][0]["field"] == "header.Idempotency-Key"


def test_an_overlong_idempotency_key_is_400(stack: RunningStack) -> None:
    answer = stack.post(BODY, {"Idempotency-Key": "k" * 256})
    assert answer.status == 400
    assert answer.json()["error"] == "invalid_idempotency_key"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": "hi"}, "recipient"),
        ({"recipient": "user@example.com"}, "message"),
        ({"recipient": "", "message": "hi"}, "recipient"),
        ({"recipient": "user@example.com", "message": ""}, "message"),
        ({"recipient": "user@", "message": "hi"}, "recipient"),
        ({"recipient": {"phone": "07911"}, "message": "hi"}, "recipient.phone"),
        ({"recipient": "user@example.com", "message": "hi", "channels": ["fax"]}, "channels.0"),
        ({"recipient": "user@example.com", "message": "hi", "channels": ["email", "email"]}, "channels"),
        ({"recipient": "user@example.com", "message": "hi", "channels": "email"}, "channels"),
        ({"recipient": 12, "message": "hi"}, "recipient"),
        ({"recipient": "user@example.com", "message": ["hi"]}, "message"),
        ({"recipient": "user@example.com", "message": "hi", "metadata": "x"}, "metadata"),
        ("just a string", "body"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(stack: RunningStack, body: object, field: str) -> None:
    answer = stack.post(body)
    assert answer.status == 422
    payload = answer.json()
    assert payload["error"] == "validation_error"
    assert field in [d["field"] for d in payload["details"]], payload
    assert "Traceback" not in answer.raw.decode()


def test_malformed_json_is_422(stack: RunningStack) -> None:
    answer = stack.request("POST", "/api/v1/notifications", raw=b'{"recipient": "a@b.co", ')
    assert answer.status == 422
    assert answer.json()["details"][0]["field"] == "body"


def test_an_oversize_body_is_413(stack: RunningStack) -> None:
    answer = stack.post({"recipient": "user@example.com", "message": "x" * 70_000})
    assert answer.status == 413
    assert answer.json()["error"] == "payload_too_large"


def test_a_form_body_is_415(stack: RunningStack) -> None:
    answer = stack.request(
        "POST",
        "/api/v1/notifications",
        raw=b"recipient=a",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status == 415
    assert answer.json()["error"] == "unsupported_media_type"


def test_unknown_notification_is_404(stack: RunningStack) -> None:
    answer = stack.request("GET", f"/api/v1/notifications/{uuid.uuid4()}")
    assert answer.status == 404
    assert answer.json()["error"] == "not_found"
    assert answer.headers["X-Correlation-ID"]


def test_health_ready_and_docs(stack: RunningStack) -> None:
    assert stack.request("GET", "/health").json() == {"status": "ok", "checks": {}, "latency_ms": {}}
    ready = stack.request("GET", "/ready")
    assert ready.status == 200
    assert ready.json()["checks"] == {"dynamodb": "ok", "sqs": "ok", "redis": "ok"}
    assert set(ready.json()["latency_ms"]) == {"dynamodb", "sqs", "redis"}
    docs = stack.request("GET", "/docs")
    assert docs.status == 200
    html = docs.raw.decode()
    assert "SwaggerUIBundle" in html
    assert "cdn" not in html.lower()
    assert 'src="http' not in html
    schema = stack.request("GET", "/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/notifications" in schema["paths"]
