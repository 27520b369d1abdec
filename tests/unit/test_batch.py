"""POST /api/v1/notifications/batch: each item validated and answered on its own."""

from __future__ import annotations

import json
from typing import Any

import pytest
from notification_service.domain.model import Status

from infra.lambda_runtime import LocalLambdaContext
from tests.conftest import load_event
from tests.fakes import ApiFakes
from tests.unit.test_api_handler import call

OK = {"recipient": "user@example.com", "message": "hello"}


def batch(body: Any) -> dict[str, Any]:
    event = load_event("api_post_notification.json")
    event["path"] = "/api/v1/notifications/batch"
    event["pathParameters"] = {"proxy": "api/v1/notifications/batch"}
    event["body"] = json.dumps(body)
    return event


def test_a_hundred_valid_notifications_are_all_accepted_with_batch_writes(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    status, _, body = call(batch({"notifications": [OK] * 100}), lambda_context)

    assert status == 202
    assert (body["accepted"], body["rejected"]) == (100, 0)
    assert [item["index"] for item in body["items"]] == list(range(100))
    assert {item["status"] for item in body["items"]} == {"pending"}
    assert len(api_fakes.repository.items) == 100
    assert {m.notification_id for m, _ in api_fakes.queue.sent} == {item["id"] for item in body["items"]}


def test_a_mix_of_good_and_bad_items_is_207_with_each_answer(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    items = [
        OK,
        {"recipient": "user@example.com"},
        {**OK, "channels": ["fax"]},
        {**OK, "send_at": "soon"},
        OK,
    ]

    status, _, body = call(batch({"notifications": items}), lambda_context)

    assert status == 207
    assert (body["accepted"], body["rejected"]) == (2, 3)
    answers = body["items"]
    assert answers[0]["id"] and answers[4]["id"]
    assert [d["field"] for d in answers[1]["error"]["details"]] == ["message"]
    assert [d["field"] for d in answers[2]["error"]["details"]] == ["channels.0"]
    assert [d["field"] for d in answers[3]["error"]["details"]] == ["send_at"]
    assert len(api_fakes.repository.items) == 2


def test_items_with_idempotency_keys_replay_and_are_refused_when_reused(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    first = [{**OK, "idempotency_key": "k-1"}, {**OK, "idempotency_key": "k-2"}]
    _, _, before = call(batch({"notifications": first}), lambda_context)

    again = [{**OK, "idempotency_key": "k-1"}, {**OK, "message": "other", "idempotency_key": "k-2"}, OK]
    status, _, after = call(batch({"notifications": again}), lambda_context)

    assert status == 207
    assert after["items"][0]["id"] == before["items"][0]["id"]
    assert after["items"][0]["replayed"] is True
    assert after["items"][1]["error"]["error"] == "idempotency_key_reused"
    assert after["items"][2]["status"] == "pending"
    assert len(api_fakes.repository.items) == 3


@pytest.mark.parametrize(
    ("outage", "stored_status"),
    [("repository", None), ("queue", Status.CANCELLED)],
)
def test_an_outage_answers_each_item_503_style_and_leaves_nothing_half_done(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext, outage: str, stored_status: Status | None
) -> None:
    getattr(api_fakes, outage).unavailable = True

    status, _, body = call(batch({"notifications": [OK, OK]}), lambda_context)

    assert (status, body["accepted"]) == (207, 0)
    assert {item["error"]["error"] for item in body["items"]} == {"service_unavailable"}
    assert {n.status for n in api_fakes.repository.items.values()} == (
        {stored_status} if stored_status else set()
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"notifications": []}, "notifications"),
        ({"notifications": [OK] * 101}, "notifications"),
        ({"items": [OK]}, "items"),
        ({"notifications": ["text"]}, "notifications.0"),
    ],
)
def test_a_bad_envelope_is_422_naming_it(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext, body: dict[str, Any], field: str
) -> None:
    status, _, answer = call(batch(body), lambda_context)

    assert status == 422
    assert field in [d["field"] for d in answer["details"]]
    assert api_fakes.repository.items == {}
