"""On the local stack: every function's lines land in CloudWatch Logs on the emulator, and
`notifyctl logs` / `notifyctl status` answer "what happened to this request"."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra import cli
from tests.e2e.conftest import KEY, RunningStack


def notifyctl(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = cli.main(["--env-file", "/nonexistent", *args])
    return code, capsys.readouterr().out


def test_logs_of_one_request_come_from_both_functions_in_order_and_only_theirs(
    email_failing_stack: RunningStack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)  # a fresh shell: notifyctl finds the emulator's region
    stack = email_failing_stack
    correlation = f"e2e-logs-{uuid.uuid4()}"
    other = stack.post({"recipient": "user@example.com", "message": "noise"}).json()["id"]
    nid = stack.post(
        {"recipient": {"email": "user@example.com", "phone": "+447911123456"}, "message": "hi"},
        {"X-Correlation-ID": correlation},
    ).json()["id"]
    stack.wait_terminal(nid)
    stack.wait_terminal(other)
    where = ["--endpoint-url", stack.emulator_url, "--stack-name", "unused-locally"]

    # WHEN the lines of that correlation id are asked for (shipping is asynchronous: wait for the last)
    deadline = time.monotonic() + 60
    while True:
        code, out = notifyctl(capsys, "logs", "--correlation-id", correlation, "--json", *where)
        lines = [json.loads(line) for line in out.splitlines()]
        messages = [json.loads(line["message"]).get("message") for line in lines]
        if "round finished" in messages:
            break
        assert time.monotonic() < deadline, messages
        time.sleep(0.2)

    # THEN every line carries it, both functions are there, and they come in time order
    assert code == 0
    records = [json.loads(line["message"]) for line in lines]
    assert {r["correlation_id"] for r in records} == {correlation}
    assert {line["log_group"] for line in lines} == {
        "/aws/lambda/ApiFunction",
        "/aws/lambda/DispatchFunction",
    }
    assert messages.index("notification accepted") < messages.index("round finished")
    assert [line["timestamp"] for line in lines] == sorted(line["timestamp"] for line in lines)

    # AND the readable form and the other filters work
    code, readable = notifyctl(
        capsys, "logs", "DispatchFunction", "--notification-id", nid, "--level", "info", *where
    )
    assert code == 0 and readable
    assert all(
        "DispatchFunction" in line and f"notification_id={nid}" in line for line in readable.splitlines()
    )
    code, out = notifyctl(capsys, "logs", "NoSuchFunction", *where)
    assert code == 1

    # AND `notifyctl status` prints the timeline
    code, timeline = notifyctl(capsys, "status", nid, "--api-url", stack.base_url, "--api-key", KEY)
    assert code == 0
    first, *attempts = timeline.splitlines()
    assert first.startswith(f"{nid}  sent")
    assert "round 1  email    failed" in attempts[0]
    assert "round 1  sms      sent" in attempts[1]


def test_metrics_count_what_was_accepted_and_sent_across_every_instance(stack: RunningStack) -> None:
    def counters() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        answer = stack.request("GET", "/metrics")
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain")
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.raw.decode())
            for s in family.samples
        }

    before = counters()
    ids = [stack.post({"recipient": "user@example.com", "message": f"m{n}"}).json()["id"] for n in range(3)]
    for nid in ids:
        stack.wait_terminal(nid)
    deadline = time.monotonic() + 30  # the dispatch records after writing the result: wait for it
    while True:
        after = counters()
        sent = ("notifications_sent_total", (("channel", "email"),))
        if after.get(sent, 0) - before.get(sent, 0) >= 3:
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)

    accepted = ("notifications_accepted_total", ())
    assert after[accepted] - before.get(accepted, 0) == 3
    assert after[sent] - before.get(sent, 0) == 3
    count = ("notification_delivery_seconds_count", ())
    assert after[count] - before.get(count, 0) == 3
