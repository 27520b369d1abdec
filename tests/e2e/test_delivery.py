"""End to end over HTTP: accept → DynamoDB + SQS → dispatch with fallback and retry rounds."""

from __future__ import annotations

import uuid
from datetime import datetime

from tests.e2e.conftest import RunningStack

SEED_BODY = {
    "recipient": "user@example.com",
    "message": "Hello from notification service!",
    "channels": ["email", "sms", "telegram"],
}
EVERY_ADDRESS = {"email": "user@example.com", "phone": "+447911123456", "telegram_chat_id": "123456789"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_seed_request_is_sent_by_email(stack: RunningStack) -> None:
    # GIVEN the seed README's request, with a correlation id
    accepted = stack.post(SEED_BODY, {"X-Correlation-ID": "e2e-seed-1"})
    # THEN it is accepted, pending, with the seed's answer shape
    assert accepted.status == 202
    body = accepted.json()
    assert set(body) == {"id", "status", "created_at"}
    assert body["status"] == "pending"
    assert accepted.headers["X-Correlation-ID"] == "e2e-seed-1"
    # WHEN dispatch runs THEN it is sent by email, first try
    record = stack.wait_terminal(body["id"])
    assert record["status"] == "sent"
    assert record["channel_used"] == "email"
    assert record["correlation_id"] == "e2e-seed-1"
    (attempt,) = record["attempts"]
    assert (attempt["round"], attempt["channel"], attempt["outcome"]) == (1, "email", "sent")
    assert attempt["provider_message_id"].startswith("mock-email-")
    assert at(record["updated_at"]) >= at(record["created_at"])


def test_the_correlation_id_reaches_the_dispatch_logs(stack: RunningStack) -> None:
    correlation_id = f"e2e-{uuid.uuid4()}"
    notification_id = stack.post(SEED_BODY, {"X-Correlation-ID": correlation_id}).json()["id"]
    stack.wait_terminal(notification_id)
    mine = [line for line in stack.log_lines() if line.get("correlation_id") == correlation_id]
    functions = {line.get("function_name") for line in mine}
    assert functions == {"ApiFunction", "DispatchFunction"}
    dispatch_lines = [line for line in mine if line.get("function_name") == "DispatchFunction"]
    assert all(line.get("notification_id") == notification_id for line in dispatch_lines)
    assert any(line.get("message") == "round finished" for line in dispatch_lines)
    # recipients are masked in every line
    assert not any("user@example.com" in str(line) for line in mine)


def test_channels_follow_the_requested_order(stack: RunningStack) -> None:
    notification_id = stack.post(
        {"recipient": EVERY_ADDRESS, "message": "hi", "channels": ["telegram", "email"]}
    ).json()["id"]
    record = stack.wait_terminal(notification_id)
    assert (record["status"], record["channel_used"]) == ("sent", "telegram")


def test_channels_without_an_address_are_skipped_and_it_fails_at_once(stack: RunningStack) -> None:
    notification_id = stack.post(
        {"recipient": "user@example.com", "message": "hi", "channels": ["sms", "telegram"]}
    ).json()["id"]
    record = stack.wait_terminal(notification_id)
    assert record["status"] == "failed"
    assert [(a["channel"], a["outcome"]) for a in record["attempts"]] == [
        ("sms", "skipped"),
        ("telegram", "skipped"),
    ]
    assert record["rounds"] == 1


def test_email_failing_falls_back_to_sms(email_failing_stack: RunningStack) -> None:
    notification_id = email_failing_stack.post({"recipient": EVERY_ADDRESS, "message": "hi"}).json()["id"]
    record = email_failing_stack.wait_terminal(notification_id)
    assert (record["status"], record["channel_used"]) == ("sent", "sms")
    assert [(a["channel"], a["outcome"], a["failure_kind"]) for a in record["attempts"]] == [
        ("email", "failed", "transient"),
        ("sms", "sent", None),
    ]
    assert "MOCK_FAIL_CHANNELS" in record["attempts"][0]["error"]


def test_all_channels_failing_ends_failed_after_three_rounds_with_backoff(
    all_failing_stack: RunningStack,
) -> None:
    # GIVEN every channel fails (transiently)
    notification_id = all_failing_stack.post({"recipient": EVERY_ADDRESS, "message": "hi"}).json()["id"]
    # WHEN the rounds run out
    record = all_failing_stack.wait_terminal(notification_id)
    # THEN it is failed after 3 rounds of 3 attempts each
    assert record["status"] == "failed"
    assert record["rounds"] == 3
    assert record["channel_used"] is None
    rounds = [[a for a in record["attempts"] if a["round"] == n] for n in (1, 2, 3)]
    assert [[a["channel"] for a in r] for r in rounds] == [["email", "sms", "telegram"]] * 3
    assert {a["outcome"] for a in record["attempts"]} == {"failed"}
    # AND the rounds are separated by the backoff: 2 s, then 4 s (RETRY_BACKOFF_BASE ** round)
    gap_1 = (at(rounds[1][0]["started_at"]) - at(rounds[0][-1]["finished_at"])).total_seconds()
    gap_2 = (at(rounds[2][0]["started_at"]) - at(rounds[1][-1]["finished_at"])).total_seconds()
    assert gap_1 >= 2
    assert gap_2 >= 4
    assert record["next_attempt_at"] is None
