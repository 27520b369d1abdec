"""Delivery guarantees on the local stack: stuck records are repaired by the sweeper; poison
messages reach the dead-letter queue, where `notifyctl dlq` lists and redrives them."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra import cli
from tests.e2e.conftest import RunningStack


def _stored_but_never_queued(stack: RunningStack, **extra: dict[str, str]) -> str:
    """A record as the API stores it, whose SQS message was never sent (the API died in between)."""
    nid = str(uuid.uuid4())
    now = datetime.now(UTC)
    item = {
        "pk": {"S": f"NOTIFICATION#{nid}"},
        "sk": {"S": "NOTIFICATION"},
        "type": {"S": "notification"},
        "id": {"S": nid},
        "status": {"S": "pending"},
        "recipient": {"M": {"email": {"S": "stuck@example.com"}}},
        "message": {"S": "left behind"},
        "channels": {"L": [{"S": "email"}]},
        "correlation_id": {"S": f"stuck-{nid}"},
        "owner": {"S": "e2e"},  # the key the tests read with
        "round": {"N": "0"},
        "attempts": {"L": []},
        "sweeps": {"N": "0"},
        "created_at": {"S": now.isoformat()},
        "updated_at": {"S": now.isoformat()},
        "sweep_status": {"S": "pending"},
        "sweep_due": {"N": str(int((now + timedelta(seconds=1)).timestamp() * 1000))},
        **extra,
    }
    stack.aws("dynamodb").put_item(TableName=stack.table_name(), Item=item)
    return nid


def test_a_record_whose_message_was_never_sent_is_delivered_by_the_sweeper(
    sweeping_stack: RunningStack,
) -> None:
    nid = _stored_but_never_queued(sweeping_stack)

    record = sweeping_stack.wait_terminal(nid, timeout=60)

    assert record["status"] == "sent"
    assert [(a["round"], a["channel"], a["outcome"]) for a in record["attempts"]] == [(1, "email", "sent")]
    swept = [
        line
        for line in sweeping_stack.log_lines()
        if line.get("message") == "stuck record re-enqueued" and line.get("notification_id") == nid
    ]
    assert swept and swept[0]["status"] == "pending"


def test_a_round_whose_worker_died_is_claimed_again_after_its_lease(sweeping_stack: RunningStack) -> None:
    # GIVEN a record some worker claimed (processing round 1) and then died: its lease ran out
    expired = datetime.now(UTC) - timedelta(seconds=5)
    lease_ms = {"N": str(int(expired.timestamp() * 1000))}
    nid = _stored_but_never_queued(
        sweeping_stack,
        status={"S": "processing"},
        round={"N": "1"},
        lease_owner={"S": "dead-worker"},
        lease_until=lease_ms,
        sweep_status={"S": "processing"},
        sweep_due=lease_ms,
    )

    record = sweeping_stack.wait_terminal(nid, timeout=60)

    # THEN the same round ran again and delivered it
    assert record["status"] == "sent"
    assert [(a["round"], a["outcome"]) for a in record["attempts"]] == [(1, "sent")]


def _dead_letters(
    stack: RunningStack, capsys: pytest.CaptureFixture[str], *args: str
) -> list[dict[str, Any]]:
    capsys.readouterr()
    code = cli.main(
        [
            "--env-file",
            "/nonexistent",
            "dlq",
            *args,
            "--json",
            "--stack-name",
            "e2e-sweeping",
            "--endpoint-url",
            stack.emulator_url,
        ]
    )
    assert code == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_poison_messages_reach_the_dead_letter_queue_and_can_be_redriven(
    sweeping_stack: RunningStack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    sqs = sweeping_stack.aws("sqs")
    queue_url = next(u for u in sqs.list_queues()["QueueUrls"] if "DeliveryQueue" in u and "Dead" not in u)
    unknown = json.dumps({"notification_id": str(uuid.uuid4()), "round": 1, "correlation_id": "poison"})
    sqs.send_message(QueueUrl=queue_url, MessageBody="{not json")
    sqs.send_message(QueueUrl=queue_url, MessageBody=unknown)

    # WHEN each has failed maxReceiveCount (5) times THEN both are on the DLQ (deadline: a hang guard)
    deadline = time.monotonic() + 90
    while True:
        letters = _dead_letters(sweeping_stack, capsys, "list")
        if {letter["body"] for letter in letters} >= {"{not json", unknown}:
            break
        assert time.monotonic() < deadline, letters
        time.sleep(0.5)
    assert all(letter["receive_count"] >= 1 for letter in letters)
    poison_logs = [
        line
        for line in sweeping_stack.log_lines()
        if "unparseable delivery message" in line.get("message", "")
    ]
    assert poison_logs

    # WHEN one is redriven THEN it leaves the DLQ for the delivery queue (a new message there)
    (chosen,) = [letter for letter in letters if letter["body"] == unknown]
    moved = _dead_letters(sweeping_stack, capsys, "redrive", chosen["message_id"])
    assert [letter["message_id"] for letter in moved] == [chosen["message_id"]]
    assert chosen["message_id"] not in {
        letter["message_id"] for letter in _dead_letters(sweeping_stack, capsys, "list")
    }
