"""List, cancel and retry on the local stack, over HTTP and through `notifyctl`."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from infra import cli
from tests.e2e.conftest import KEY, RunningStack

EMAIL_ONLY = {"recipient": "user@example.com", "message": "lifecycle", "channels": ["email"]}


def notifyctl(stack: RunningStack, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(["--env-file", "/nonexistent", *args, "--api-url", stack.base_url, "--api-key", KEY])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_failed_notification_is_listed_and_retried_with_fresh_rounds(
    all_failing_stack: RunningStack, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a notification that failed its three rounds
    nid = all_failing_stack.post(EMAIL_ONLY).json()["id"]
    failed = all_failing_stack.wait_terminal(nid)
    assert (failed["status"], failed["rounds"]) == ("failed", 3)

    # THEN it is in the list of failed ones, newest first, over HTTP and in `notifyctl list`
    page = all_failing_stack.request("GET", "/api/v1/notifications?status=failed&limit=100").json()
    assert page["items"][0]["id"] == nid
    code, out, _ = notifyctl(all_failing_stack, capsys, "list", "--status", "failed", "--limit", "5")
    assert code == 0
    assert nid in out.splitlines()[0] and "failed" in out

    # WHEN it is retried THEN it gets three fresh rounds (and fails again: every channel still fails)
    code, out, _ = notifyctl(all_failing_stack, capsys, "retry", nid)
    assert code == 0 and "retrying" in out
    again = all_failing_stack.wait_terminal(nid)
    assert (again["status"], again["rounds"]) == ("failed", 6)
    assert [a["round"] for a in again["attempts"]] == [1, 2, 3, 4, 5, 6]

    # AND retrying something that is not failed is refused, naming why
    other = all_failing_stack.post(EMAIL_ONLY).json()["id"]
    answer = all_failing_stack.request("POST", f"/api/v1/notifications/{other}/retry")
    assert (answer.status, answer.json()["error"]) == (409, "cannot_retry")  # failing takes two backoffs


def test_a_notification_cancelled_between_rounds_is_never_tried_again(
    email_failing_stack: RunningStack, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN email-only with email failing: after round 1 it waits `retrying` for round 2
    nid = email_failing_stack.post(EMAIL_ONLY).json()["id"]
    deadline = time.monotonic() + 60  # a hang guard, not a timing claim
    while True:
        record = email_failing_stack.request("GET", f"/api/v1/notifications/{nid}").json()
        if record["status"] == "retrying":
            answer = email_failing_stack.request("POST", f"/api/v1/notifications/{nid}/cancel")
            if answer.status == 200:
                break
            assert answer.status == 409  # round 2 claimed it in between: try again after it
        assert record["status"] not in {"sent", "failed", "cancelled"}, record
        assert time.monotonic() < deadline
        time.sleep(0.05)
    cancelled = answer.json()
    assert (cancelled["status"], cancelled["status_reason"]) == ("cancelled", "cancelled by the client")
    rounds_at_cancel = cancelled["rounds"]

    # WHEN the next round's message arrives THEN it loses its claim, and nothing more is tried
    while not any(
        line.get("notification_id") == nid and line.get("reason") == "already_finished"
        for line in email_failing_stack.log_lines()
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    final = email_failing_stack.request("GET", f"/api/v1/notifications/{nid}").json()
    assert (final["status"], final["rounds"]) == ("cancelled", rounds_at_cancel)

    # AND cancelling it again, or anything already finished, is a 409; `notifyctl cancel` says so
    code, _, err = notifyctl(email_failing_stack, capsys, "cancel", nid)
    assert code == 1
    assert "HTTP 409" in err and "already cancelled" in err


def test_a_scheduled_notification_hops_until_due_and_is_sent_no_earlier(sweeping_stack: RunningStack) -> None:
    # GIVEN SQS delays of at most 1 s on this stack, and a notification 4 s ahead
    send_at = datetime.now(UTC) + timedelta(seconds=4)
    accepted = sweeping_stack.post({**EMAIL_ONLY, "send_at": send_at.isoformat()}).json()
    assert accepted["status"] == "scheduled"
    cancelled = sweeping_stack.post({**EMAIL_ONLY, "send_at": send_at.isoformat()}).json()
    answer = sweeping_stack.request("POST", f"/api/v1/notifications/{cancelled['id']}/cancel")
    assert answer.json()["status"] == "cancelled"

    record = sweeping_stack.wait_terminal(accepted["id"], timeout=60)

    # THEN it was sent, not before its time, after hopping towards it
    assert record["status"] == "sent"
    assert datetime.fromisoformat(record["attempts"][0]["started_at"]) >= send_at.replace(microsecond=0)
    hops = [
        line
        for line in sweeping_stack.log_lines()
        if line.get("notification_id") == accepted["id"] and line.get("reason") == "not_yet_due"
    ]
    assert len(hops) >= 2
    # AND the cancelled one never was
    assert sweeping_stack.request("GET", f"/api/v1/notifications/{cancelled['id']}").json()["attempts"] == []


def test_a_hundred_notifications_in_one_batch_are_all_delivered(stack: RunningStack) -> None:
    items = [{"recipient": f"user{n}@example.com", "message": f"batch {n}"} for n in range(100)]

    answer = stack.request("POST", "/api/v1/notifications/batch", {"notifications": items})

    assert answer.status == 202
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (100, 0)
    for item in body["items"]:
        assert stack.wait_terminal(item["id"])["status"] == "sent"


def test_routing_all_delivers_on_every_channel(email_failing_stack: RunningStack) -> None:
    everyone = {"email": "user@example.com", "phone": "+447911123456", "telegram_chat_id": "123456789"}
    body = {"recipient": everyone, "message": "to every channel", "routing": "all"}
    nid = email_failing_stack.post(body).json()["id"]

    record = email_failing_stack.wait_terminal(nid)

    # email fails on this stack in every round; sms and telegram deliver once each
    assert record["status"] == "partially_sent"
    assert record["routing"] == "all"
    assert record["status_reason"] == "not delivered on email"
    sent = [(a["round"], a["channel"]) for a in record["attempts"] if a["outcome"] == "sent"]
    assert sent == [(1, "sms"), (1, "telegram")]
    assert [a["channel"] for a in record["attempts"] if a["round"] > 1] == ["email", "email"]


def test_a_template_renders_each_channel_and_a_missing_variable_is_named(stack: RunningStack) -> None:
    template = {
        "email": {"subject": "Order {{ order_id }}", "text": "Hi {{ name }}, order {{ order_id }} shipped."},
        "sms": {"text": "Order {{ order_id }} shipped"},
    }
    assert stack.request("PUT", "/api/v1/templates/e2e-shipped", template).json()["version"] >= 1
    recipient = {"email": "ann@example.com", "phone": "+447911123456"}

    missing = stack.post({"recipient": recipient, "template": "e2e-shipped", "variables": {"order_id": 7}})
    accepted = stack.post(
        {"recipient": recipient, "template": "e2e-shipped", "variables": {"order_id": 7, "name": "Ann"}}
    )

    assert missing.status == 422
    assert missing.json()["details"] == [
        {"field": "variables.name", "reason": "missing (the template uses it)"}
    ]
    record = stack.wait_terminal(accepted.json()["id"])
    assert (record["status"], record["channel_used"], record["template"]) == ("sent", "email", "e2e-shipped")
    assert record["contents"]["email"]["text"] == "Hi Ann, order 7 shipped."
    assert record["contents"]["email"]["subject"] == "Order 7"


def test_notifyctl_sends_from_a_template_and_in_a_batch(
    stack: RunningStack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    template_file = tmp_path / "welcome.json"
    template_file.write_text(json.dumps({"sms": {"text": "Welcome {{ name }}"}}))
    batch_file = tmp_path / "batch.json"
    batch_file.write_text(json.dumps([{"recipient": "+447911123456", "message": "one"}, {"recipient": "x"}]))

    code, out, _ = notifyctl(stack, capsys, "templates", "put", "e2e-welcome", "--file", str(template_file))
    assert code == 0 and "e2e-welcome" in out
    code, out, _ = notifyctl(stack, capsys, "templates", "list")
    assert "e2e-welcome" in out
    code, out, _ = notifyctl(
        stack,
        capsys,
        "send",
        "--to",
        "+447911123456",
        "--template",
        "e2e-welcome",
        "--var",
        "name=Ann",
        "--json",
    )
    assert code == 0
    sent = stack.wait_terminal(json.loads(out)["id"])
    assert sent["contents"]["sms"]["text"] == "Welcome Ann"
    code, out, _ = notifyctl(stack, capsys, "send", "--batch", str(batch_file))
    assert code == 0
    assert "#0" in out and "#1  rejected" in out
    code, _, err = notifyctl(stack, capsys, "send", "--to", "a@example.com", "--template", "e2e-welcome")
    assert code == 1 and "variables.name" in err
    code, _, _ = notifyctl(stack, capsys, "templates", "delete", "e2e-welcome")
    assert code == 0
