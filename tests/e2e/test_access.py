"""Who may call, and what each caller sees: API keys on the local stack, as a new user would try them."""

from __future__ import annotations

import uuid

from tests.e2e.conftest import NO_KEY, OTHER_KEY, RunningStack

EMAIL = {"recipient": {"email": "owner@example.com"}, "message": "mine", "channels": ["email"]}


def test_a_request_without_a_key_is_401_and_health_is_open(stack: RunningStack) -> None:
    refused = stack.post(EMAIL, key=NO_KEY)
    assert refused.status == 401
    assert refused.json()["details"] == [{"field": "header.X-API-Key", "reason": "missing"}]
    assert stack.post(EMAIL, key="nsk_not-a-key").status == 401
    assert stack.request("GET", "/api/v1/notifications", key=NO_KEY).status == 401
    assert stack.request("GET", "/health", key=NO_KEY).status == 200
    assert stack.request("GET", "/docs", key=NO_KEY).status == 200


def test_another_key_cannot_see_list_cancel_or_retry_my_notification(stack: RunningStack) -> None:
    # GIVEN my notification
    mine = stack.post(EMAIL).json()["id"]
    path = f"/api/v1/notifications/{mine}"
    # THEN to another key it does not exist
    assert stack.request("GET", path, key=OTHER_KEY).status == 404
    assert stack.request("POST", f"{path}/cancel", key=OTHER_KEY).status == 404
    assert stack.request("POST", f"{path}/retry", key=OTHER_KEY).status == 404
    theirs = stack.request("GET", "/api/v1/notifications?limit=100", key=OTHER_KEY).json()["items"]
    assert mine not in {n["id"] for n in theirs}
    # AND to me it does
    assert stack.request("GET", path).status == 200
    listed = stack.request("GET", "/api/v1/notifications?limit=100").json()["items"]
    assert mine in {n["id"] for n in listed}


def test_idempotency_keys_are_per_api_key(stack: RunningStack) -> None:
    headers = {"Idempotency-Key": f"shared-{uuid.uuid4()}"}
    first = stack.post(EMAIL, headers)
    again = stack.post(EMAIL, headers)
    other = stack.post(EMAIL, headers, key=OTHER_KEY)
    assert first.status == other.status == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers.get("Idempotency-Replayed") == "true"
    assert other.json()["id"] != first.json()["id"]  # another client's key is another request
    assert "Idempotency-Replayed" not in other.headers


def test_a_burst_past_the_key_limit_is_429_with_retry_after(limited_stack: RunningStack) -> None:
    # GIVEN a burst of 3 per key: 3 notifications to different addresses pass
    answers = [
        limited_stack.post({**EMAIL, "recipient": {"email": f"burst-{n}@example.com"}}) for n in range(4)
    ]
    assert [a.status for a in answers[:3]] == [202, 202, 202]
    assert answers[0].headers["RateLimit-Limit"] == "3"
    assert [a.headers["RateLimit-Remaining"] for a in answers[:3]] == ["2", "1", "0"]
    # THEN the 4th is refused, saying when to come back (a token every 10 s)
    refused = answers[3]
    assert refused.status == 429
    assert refused.json()["error"] == "rate_limited"
    assert refused.json()["details"][0]["field"] == "header.X-API-Key"
    assert 1 <= int(refused.headers["Retry-After"]) <= 10
    assert refused.headers["RateLimit-Remaining"] == "0"
    # AND another key has its own bucket
    assert (
        limited_stack.post({**EMAIL, "recipient": {"email": "other@example.com"}}, key=OTHER_KEY).status
        == 202
    )


def test_a_recipient_gets_at_most_its_hourly_limit_whoever_sends(limited_stack: RunningStack) -> None:
    to_one = {**EMAIL, "recipient": {"email": "popular@example.com"}}
    first = limited_stack.post(to_one, key=OTHER_KEY)
    second = limited_stack.post({**to_one, "recipient": {"email": "POPULAR@example.com"}}, key=OTHER_KEY)
    assert (first.status, second.status) == (202, 202)
    refused = limited_stack.post(to_one, key=OTHER_KEY)
    assert refused.status == 429
    assert refused.json()["details"][0]["field"] == "recipient"
    assert int(refused.headers["Retry-After"]) > 3000  # the hour since the first one
