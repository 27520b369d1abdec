"""With `--sinks`, the real SMTP, Twilio and Telegram providers deliver to local peers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from notification_service.adapters.log_reader import LogReader

from infra.sinks import LOCAL_TELEGRAM_TOKEN, LOCAL_TWILIO_TOKEN, read_inbox
from tests.e2e.conftest import NO_KEY, RunningStack
from tests.e2e.test_delivery import SEED_BODY


def inbox(stack: RunningStack) -> list[dict[str, object]]:
    return read_inbox(Path(stack.log_path).parent / "sinks.jsonl")


def test_the_seed_request_arrives_as_a_real_email(sinks_stack: RunningStack) -> None:
    # GIVEN the seed's curl request WHEN it is delivered
    notification_id = sinks_stack.post(SEED_BODY).json()["id"]
    record = sinks_stack.wait_terminal(notification_id)
    # THEN the SMTP sink got a mail with subject, body and the Message-ID recorded as provider id
    assert (record["status"], record["channel_used"]) == ("sent", "email")
    mail = next(m for m in inbox(sinks_stack) if m.get("message_id") == record["provider_message_id"])
    assert mail["to"] == ["user@example.com"]
    assert mail["subject"] == "Hello from notification service!"
    assert mail["body"] == "Hello from notification service!"
    assert str(record["provider_message_id"]).endswith("@example.com>")


def test_a_refused_recipient_falls_back_to_sms_through_twilio(sinks_stack: RunningStack) -> None:
    body = {
        "recipient": {"email": "reject-me@example.com", "phone": "+447911123456"},
        "message": "Order shipped",
    }
    record = sinks_stack.wait_terminal(sinks_stack.post(body).json()["id"])
    assert record["status"] in {"sent", "delivered"}  # the Twilio peer's receipt may be in already
    assert record["channel_used"] == "sms"
    first = record["attempts"][0]
    assert (first["channel"], first["outcome"], first["failure_kind"]) == ("email", "failed", "permanent")
    assert "550" in first["error"]
    sms = next(m for m in inbox(sinks_stack) if m.get("sid") == record["provider_message_id"])
    assert (sms["to"], sms["body"]) == ("+447911123456", "Order shipped")


def test_telegram_goes_through_the_bot_api(sinks_stack: RunningStack) -> None:
    body = {
        "recipient": {"telegram_chat_id": "987654321"},
        "message": "Hi on Telegram",
        "channels": ["telegram"],
    }
    record = sinks_stack.wait_terminal(sinks_stack.post(body).json()["id"])
    assert (record["status"], record["channel_used"]) == ("sent", "telegram")
    assert any(m.get("to") == "987654321" and m["body"] == "Hi on Telegram" for m in inbox(sinks_stack))


def test_a_message_too_long_for_every_requested_channel_is_422(sinks_stack: RunningStack) -> None:
    answer = sinks_stack.post({"recipient": "+447911123456", "message": "x" * 1601, "channels": ["sms"]})
    assert answer.status == 422
    assert answer.json()["details"][0]["field"] == "message"


def test_provider_tokens_never_reach_a_log_line(sinks_stack: RunningStack) -> None:
    sinks_stack.wait_terminal(
        sinks_stack.post(
            {
                "recipient": {"telegram_chat_id": "400400", "phone": "+447911120001"},
                "message": "fails",
                "channels": ["telegram", "sms"],
            }
        ).json()["id"]
    )
    text = sinks_stack.log_path.read_text()
    for secret in (LOCAL_TELEGRAM_TOKEN, LOCAL_TELEGRAM_TOKEN.split(":")[1], LOCAL_TWILIO_TOKEN):
        assert secret not in text


def test_no_secret_or_full_recipient_address_is_in_any_log_group(sinks_stack: RunningStack) -> None:
    # GIVEN deliveries through every real provider, one of them failing
    recipients = {
        "email": "private.person@example.com",
        "phone": "+447911654321",
        "telegram_chat_id": "55501234",
    }
    for channels in (["email"], ["sms"], ["telegram"], ["telegram", "sms"]):
        body = {"recipient": recipients, "message": "secret-free", "channels": channels}
        sinks_stack.wait_terminal(sinks_stack.post(body).json()["id"])
    logs = sinks_stack.aws("logs")
    groups = [
        g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]
    ]
    secrets = (LOCAL_TELEGRAM_TOKEN, LOCAL_TELEGRAM_TOKEN.split(":")[1], LOCAL_TWILIO_TOKEN)

    # WHEN every line the functions shipped to CloudWatch is read (shipping is asynchronous: wait for
    # the last delivery's line)
    deadline = time.monotonic() + 60
    while True:
        lines = [event.message for event in LogReader(logs, groups).read(0)]
        if sum("round finished" in line for line in lines) >= 4:
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)

    # THEN no provider secret and no full address appears in any of them (masked forms do)
    assert {"/aws/lambda/ApiFunction", "/aws/lambda/DispatchFunction"} <= set(groups)
    text = "\n".join(lines)
    for secret in (*secrets, *recipients.values()):
        assert secret not in text, secret
    assert "p***@example.com" in text  # the API's "notification accepted" line, masked


def _final(stack: RunningStack, nid: str, timeout: float = 30) -> dict[str, Any]:
    """The record once the sms's receipt is in."""
    return stack.wait_for(nid, lambda r: r["status"] in {"delivered", "undelivered"}, timeout)


def test_twilio_receipts_move_an_sms_to_delivered_or_undelivered(sinks_stack: RunningStack) -> None:
    # GIVEN two sms: the Twilio peer reports the first delivered, the second (+...0003) undelivered
    delivered = sinks_stack.post({"recipient": "+447911123456", "message": "hi", "channels": ["sms"]})
    lost = sinks_stack.post({"recipient": "+447911120003", "message": "hi", "channels": ["sms"]})
    # THEN its signed status callbacks move them on, for good
    record = _final(sinks_stack, delivered.json()["id"])
    assert (record["status"], record["channel_used"]) == ("delivered", "sms")
    record = _final(sinks_stack, lost.json()["id"])
    assert record["status"] == "undelivered"
    assert "30003" in record["status_reason"]
    listed = sinks_stack.request("GET", "/api/v1/notifications?status=undelivered&limit=100").json()
    assert lost.json()["id"] in {n["id"] for n in listed["items"]}


def test_a_forged_twilio_callback_is_403(sinks_stack: RunningStack) -> None:
    nid = sinks_stack.post({"recipient": "+447911123456", "message": "hi", "channels": ["sms"]}).json()["id"]
    path = f"/api/v1/providers/twilio/status?notification_id={nid}"
    form = b"MessageSid=SM00000000000000000000000000000000&MessageStatus=undelivered"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    unsigned = sinks_stack.request("POST", path, headers=headers, raw=form, key=NO_KEY)
    assert unsigned.status == 403
    forged = sinks_stack.request(
        "POST", path, headers={**headers, "X-Twilio-Signature": "bm90LWEtc2lnbmF0dXJl"}, raw=form, key=NO_KEY
    )
    assert (forged.status, forged.json()["error"]) == (403, "forbidden")
    assert _final(sinks_stack, nid)["status"] == "delivered"  # the real receipt still counts
