"""Delivery webhooks on the local stack: a receiver on this machine gets one signed event per terminal
status, verifies it with the README's recipe, and a failed POST is retried through the queue."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.e2e.conftest import WEBHOOK_SECRET, RunningStack


def verify(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
    """README.md's verification recipe, as a receiver would paste it."""
    items = [part.strip().partition("=") for part in header.split(",")]
    timestamps = [value for key, _, value in items if key == "t"]
    signatures = [value for key, _, value in items if key == "v1" and value.isascii()]
    if len(timestamps) != 1 or not (timestamps[0].isascii() and timestamps[0].isdigit()):
        return False
    if len(timestamps[0]) > 15 or abs(time.time() - int(timestamps[0])) > tolerance:
        return False
    signed = timestamps[0].encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, signature) for signature in signatures)


class Receiver:
    """A webhook receiver: records every POST; answers 500 to the first `failures` of each path."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.failures: dict[str, int] = {}
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._changed:
                    receiver.received.append((self.path, dict(self.headers), body))
                    left = receiver.failures.get(self.path, 0)
                    receiver.failures[self.path] = max(0, left - 1)
                    receiver._changed.notify_all()
                self.send_response(500 if left else 204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def events(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        with self._changed:
            return [(headers, body) for p, headers, body in self.received if p == path]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.stop()


def settled(stack: RunningStack, nid: str, status: str, timeout: float = 60) -> dict[str, Any]:
    """The record once the webhook for `status` has had its last attempt."""
    return stack.wait_for(
        nid, lambda r: any(w["status"] == status and w["final"] for w in r["webhooks"]), timeout
    )


EMAIL = {"recipient": {"email": "hooked@example.com"}, "message": "hooked", "channels": ["email"]}


def test_a_sent_notification_posts_one_signed_event(stack: RunningStack, receiver: Receiver) -> None:
    # GIVEN a notification with a callback_url on this machine (the local stack allows private ones)
    nid = stack.post({**EMAIL, "callback_url": f"{receiver.base_url}/sent"}).json()["id"]
    # WHEN it is sent and its webhook settled
    record = settled(stack, nid, "sent")
    # THEN the receiver got exactly one event, whose signature verifies with the documented recipe
    [(headers, body)] = receiver.events("/sent")
    assert verify(WEBHOOK_SECRET, body, headers["X-Signature"])
    assert not verify("another-secret", body, headers["X-Signature"])
    event = json.loads(body)
    assert event["type"] == "notification.sent"
    assert event["data"]["id"] == nid and event["data"]["status"] == "sent"
    assert event["data"]["channel_used"] == "email"
    assert [a["outcome"] for a in event["data"]["attempts"]] == ["sent"]
    assert headers["X-Event-Id"] == event["id"]
    # AND the attempt is in the notification's history
    [attempt] = record["webhooks"]
    assert (attempt["event_id"], attempt["delivered"], attempt["status_code"]) == (event["id"], True, 204)
    assert record["callback_url"] == f"{receiver.base_url}/sent"


def test_a_failing_receiver_is_retried_with_the_same_event_id(
    stack: RunningStack, receiver: Receiver
) -> None:
    receiver.failures["/flaky"] = 2
    nid = stack.post({**EMAIL, "callback_url": f"{receiver.base_url}/flaky"}).json()["id"]
    record = settled(stack, nid, "sent")
    assert [(w["attempt"], w["delivered"], w["status_code"]) for w in record["webhooks"]] == [
        (1, False, 500),
        (2, False, 500),
        (3, True, 204),
    ]
    assert record["status"] == "sent"  # a webhook's failure never touches the notification's status
    ids = {json.loads(body)["id"] for _, body in receiver.events("/flaky")}
    assert len(ids) == 1  # the same event, delivered again


def test_a_cancelled_and_a_failed_notification_each_post_their_event(
    stack: RunningStack, all_failing_stack: RunningStack, receiver: Receiver
) -> None:
    late = stack.post({**EMAIL, "send_at": _in_days(20), "callback_url": f"{receiver.base_url}/cancel"})
    nid = late.json()["id"]
    assert stack.request("POST", f"/api/v1/notifications/{nid}/cancel").status == 200
    settled(stack, nid, "cancelled")
    [(_, body)] = receiver.events("/cancel")
    assert json.loads(body)["data"]["status"] == "cancelled"

    failing = all_failing_stack.post({**EMAIL, "callback_url": f"{receiver.base_url}/failed"}).json()["id"]
    settled(all_failing_stack, failing, "failed", timeout=90)
    [(_, body)] = receiver.events("/failed")
    assert json.loads(body)["data"]["status"] == "failed"


def test_the_metadata_service_is_refused_as_a_callback(stack: RunningStack) -> None:
    refused = stack.post({**EMAIL, "callback_url": "http://169.254.169.254/latest/meta-data/"})
    assert refused.status == 422
    assert refused.json()["details"][0]["field"] == "callback_url"


def _in_days(days: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + days * 86400))
