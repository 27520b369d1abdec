"""Delivery guarantees on the local stack: stuck records are repaired by the sweeper."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

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
