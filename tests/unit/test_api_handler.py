"""ApiFunction's handler on API Gateway events, with in-memory fakes behind it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from notification_service.domain.model import Status

from infra.lambda_runtime import LocalLambdaContext
from tests.conftest import load_event
from tests.fakes import ApiFakes
from tests.handlers import load_function_module

api = load_function_module("api")
ROOT = Path(__file__).resolve().parents[2]


def call(event: dict[str, Any], context: LocalLambdaContext) -> tuple[int, dict[str, list[str]], Any]:
    result = api.lambda_handler(event, context)
    body = json.loads(result["body"]) if result.get("body") else None
    return result["statusCode"], result["multiValueHeaders"], body


def post(body: Any, headers: dict[str, str] | None = None, raw: str | None = None) -> dict[str, Any]:
    event = load_event("api_post_notification.json")
    event["body"] = raw if raw is not None else json.dumps(body)
    for name, value in (headers or {}).items():
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    return event


def test_seed_post_is_accepted_stored_and_queued(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    # GIVEN the seed's sample request WHEN it is posted
    status, headers, body = call(load_event("api_post_notification.json"), lambda_context)
    # THEN 202 with id, pending status and creation time; the record is stored and round 1 queued
    assert status == 202
    assert body["status"] == "pending"
    assert body["created_at"].endswith("Z")
    stored = api_fakes.repository.items[body["id"]]
    assert stored.status is Status.PENDING
    assert stored.correlation_id == "sample-correlation-id-0001"
    assert [(m.notification_id, m.round, d) for m, d in api_fakes.queue.sent] == [(body["id"], 1, 0)]
    assert headers["X-Correlation-ID"] == ["sample-correlation-id-0001"]
    assert headers["Location"] == [f"/api/v1/notifications/{body['id']}"]


def test_get_answers_status_and_history(api_fakes: ApiFakes, lambda_context: LocalLambdaContext) -> None:
    _, _, accepted = call(load_event("api_post_notification.json"), lambda_context)
    event = load_event("api_get_notification.json")
    event["path"] = f"/api/v1/notifications/{accepted['id']}"
    status, _, body = call(event, lambda_context)
    assert status == 200
    assert body["id"] == accepted["id"]
    assert body["status"] == "pending"
    assert body["attempts"] == []
    assert body["channel_used"] is None
    assert body["recipient"]["email"] == "user@example.com"


def test_unknown_id_is_404_json(api_fakes: ApiFakes, lambda_context: LocalLambdaContext) -> None:
    status, headers, body = call(load_event("api_get_notification.json"), lambda_context)
    assert status == 404
    assert body["error"] == "not_found"
    assert "X-Correlation-ID" in headers


def test_unknown_route_is_404_json(api_fakes: ApiFakes, lambda_context: LocalLambdaContext) -> None:
    event = load_event("api_get_health.json")
    event["path"] = "/nope"
    status, _, body = call(event, lambda_context)
    assert (status, body["error"]) == (404, "not_found")


def test_correlation_id_is_generated_when_absent(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    event = load_event("api_get_health.json")
    status, headers, body = call(event, lambda_context)
    assert status == 200
    assert body == {"status": "ok", "checks": {}, "latency_ms": {}}
    assert len(headers["X-Correlation-ID"][0]) == 36


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": "hi"}, "recipient"),
        ({"recipient": "user@example.com"}, "message"),
        ({"recipient": "", "message": "hi"}, "recipient"),
        ({"recipient": "user@example.com", "message": "   "}, "message"),
        ({"recipient": "not an address", "message": "hi"}, "recipient"),
        ({"recipient": {"email": "nope"}, "message": "hi"}, "recipient.email"),
        ({"recipient": {}, "message": "hi"}, "recipient"),
        ({"recipient": "user@example.com", "message": "hi", "channels": ["pigeon"]}, "channels.0"),
        ({"recipient": "user@example.com", "message": "hi", "channels": ["sms", "sms"]}, "channels"),
        ({"recipient": "user@example.com", "message": "hi", "channels": []}, "channels"),
        ({"recipient": "user@example.com", "message": 42}, "message"),
        ({"recipient": "user@example.com", "message": "hi", "extra": 1}, "extra"),
        ([1, 2], "body"),
    ],
)
def test_bad_input_is_422_naming_the_field(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext, body: Any, field: str
) -> None:
    status, _, answer = call(post(body), lambda_context)
    assert status == 422
    assert answer["error"] == "validation_error"
    assert field in [d["field"] for d in answer["details"]], answer
    assert api_fakes.repository.items == {}
    assert api_fakes.queue.sent == []


def test_malformed_json_is_422_on_body(api_fakes: ApiFakes, lambda_context: LocalLambdaContext) -> None:
    status, _, answer = call(post(None, raw='{"recipient": '), lambda_context)
    assert status == 422
    assert answer["details"][0]["field"] == "body"
    assert answer["details"][0]["reason"].startswith("malformed JSON")


def test_oversize_body_is_413(api_fakes: ApiFakes, lambda_context: LocalLambdaContext) -> None:
    status, headers, answer = call(
        post({"recipient": "u@example.com", "message": "x" * 3000}), lambda_context
    )
    assert status == 413
    assert answer["details"] == [{"field": "body", "reason": "larger than 2048 bytes"}]
    assert "X-Correlation-ID" in headers


def test_non_json_content_type_is_415(api_fakes: ApiFakes, lambda_context: LocalLambdaContext) -> None:
    event = post({"recipient": "u@example.com", "message": "x"}, headers={"Content-Type": "text/csv"})
    status, _, answer = call(event, lambda_context)
    assert (status, answer["error"]) == (415, "unsupported_media_type")


def test_idempotent_replay_answers_the_same_notification(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    # GIVEN a request with an Idempotency-Key
    event = load_event("api_post_notification_idempotent.json")
    first_status, first_headers, first = call(event, lambda_context)
    # WHEN it is sent again with the same body
    again_status, again_headers, again = call(
        load_event("api_post_notification_idempotent.json"), lambda_context
    )
    # THEN the same notification answers, marked as replayed, stored and queued once
    assert (first_status, again_status) == (202, 202)
    assert again == first
    assert "Idempotency-Replayed" not in first_headers
    assert again_headers["Idempotency-Replayed"] == ["true"]
    assert len(api_fakes.repository.items) == 1
    assert len(api_fakes.queue.sent) == 1


def test_idempotency_key_with_other_body_is_422(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    call(load_event("api_post_notification_idempotent.json"), lambda_context)
    event = load_event("api_post_notification_idempotent.json")
    event["body"] = json.dumps({"recipient": "other@example.com", "message": "different"})
    status, _, answer = call(event, lambda_context)
    assert (status, answer["error"]) == (422, "idempotency_key_reused")
    assert answer["details"][0]["field"] == "header.Idempotency-Key"


def test_idempotency_key_in_flight_is_409_with_retry_after(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    api_fakes.idempotency.in_flight.add("order-1234-shipped")
    status, headers, answer = call(load_event("api_post_notification_idempotent.json"), lambda_context)
    assert (status, answer["error"]) == (409, "idempotency_key_in_flight")
    assert headers["Retry-After"] == ["1"]


@pytest.mark.parametrize(("key", "status"), [("k" * 255, 202), ("k" * 256, 400)])
def test_idempotency_key_length(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext, key: str, status: int
) -> None:
    got, _, answer = call(
        post({"recipient": "u@example.com", "message": "x"}, {"Idempotency-Key": key}), lambda_context
    )
    assert got == status, answer


def test_dependency_outage_is_503_with_retry_after(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    api_fakes.queue.unavailable = True
    status, headers, answer = call(load_event("api_post_notification.json"), lambda_context)
    assert (status, answer["error"]) == (503, "service_unavailable")
    assert "sqs" in answer["message"]
    assert headers["Retry-After"] == ["1"]


def test_unexpected_error_is_500_without_stack_trace(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(_notification_id: str) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api_fakes.repository, "get", boom)
    status, _, answer = call(load_event("api_get_notification.json"), lambda_context)
    assert (status, answer["error"]) == (500, "internal_error")
    assert "secret internals" not in json.dumps(answer)


def test_ready_names_the_failed_dependency(api_fakes: ApiFakes, lambda_context: LocalLambdaContext) -> None:
    event = load_event("api_get_health.json")
    event["path"] = "/ready"
    assert call(event, lambda_context)[0] == 200
    api_fakes.idempotency.unavailable = True
    status, _, body = call(event, lambda_context)
    assert status == 503
    assert body["checks"] == {"dynamodb": "ok", "sqs": "ok", "redis": "unavailable: fake outage"}


def test_a_cold_start_does_not_build_the_openapi_models() -> None:
    # GIVEN a fresh interpreter as Lambda starts one WHEN the API's module is imported
    code = "import sys, app; print('aws_lambda_powertools.event_handler.openapi.models' in sys.modules)"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "layers" / "shared"),
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / "api"),
        "AWS_LAMBDA_FUNCTION_NAME": "api",
        "AWS_REGION": "us-east-1",
    }
    cwd = ROOT / "functions" / "api"
    found = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    # THEN powertools' OpenAPI models (what /docs and /openapi.json need) are not loaded yet
    assert found.stdout.strip() == "False", found.stderr


def test_openapi_and_swagger_are_served_offline(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    event = load_event("api_get_health.json")
    event["path"] = "/openapi.json"
    status, _, schema = call(event, lambda_context)
    assert status == 200
    assert {"/api/v1/notifications", "/api/v1/notifications/{notification_id}", "/health", "/ready"} <= set(
        schema["paths"]
    )
    event["path"] = "/docs"
    result = api.lambda_handler(event, lambda_context)
    assert result["statusCode"] == 200
    html = result["body"]
    assert "SwaggerUIBundle" in html
    assert 'src="http' not in html
    assert 'href="http' not in html
