"""Listing, cancelling and retrying notifications: the handler routes and the rules behind them."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from notification_service.domain.api_keys import ANONYMOUS
from notification_service.domain.lifecycle import TransitionRefused, why_not
from notification_service.domain.model import Channel, Notification, Status
from notification_service.domain.recipient import Recipient
from notification_service.domain.retry_policy import RetryPolicy
from notification_service.ports import DeliveryMessage
from notification_service.service.dispatch import DispatchOutcome, DispatchService
from notification_service.service.notifications import NotificationService

from infra.lambda_runtime import LocalLambdaContext
from tests.conftest import load_event
from tests.fakes import ApiFakes, FakeProvider, permanent, transient
from tests.unit.test_api_handler import call


def request(method: str, path: str, query: dict[str, str] | None = None) -> dict[str, Any]:
    event = load_event("api_get_notification.json")
    event["httpMethod"] = method
    event["path"] = path
    event["pathParameters"] = {"proxy": path.lstrip("/")}
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in (query or {}).items()} if query else None
    return event


def stored(
    fakes: ApiFakes, nid: str, status: Status, channels: tuple[Channel, ...] = (Channel.EMAIL,)
) -> None:
    fakes.clock.advance(1)  # distinct creation times: newest first is well defined
    fakes.repository.add(
        Notification(
            id=nid,
            recipient=Recipient(email="user@example.com", phone="+447911123456"),
            message="hi",
            channels=channels,
            correlation_id=f"corr-{nid}",
            created_at=fakes.clock(),
            updated_at=fakes.clock(),
            status=status,
            round=3 if status is Status.FAILED else 0,
        )
    )


# --- list ------------------------------------------------------------------------------------------


def test_list_is_newest_first_and_pages_with_a_cursor(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    for n in range(5):
        stored(api_fakes, f"n{n}", Status.SENT)

    status, _, first = call(request("GET", "/api/v1/notifications", {"limit": "2"}), lambda_context)
    _, _, second = call(
        request("GET", "/api/v1/notifications", {"limit": "2", "cursor": first["next_cursor"]}),
        lambda_context,
    )
    _, _, last = call(
        request("GET", "/api/v1/notifications", {"limit": "2", "cursor": second["next_cursor"]}),
        lambda_context,
    )

    assert status == 200
    assert [i["id"] for i in first["items"] + second["items"] + last["items"]] == [
        "n4",
        "n3",
        "n2",
        "n1",
        "n0",
    ]
    assert last["next_cursor"] is None


def test_list_filters_by_status_and_channel(api_fakes: ApiFakes, lambda_context: LocalLambdaContext) -> None:
    stored(api_fakes, "failed-sms", Status.FAILED, (Channel.SMS,))
    stored(api_fakes, "failed-email", Status.FAILED, (Channel.EMAIL,))
    stored(api_fakes, "sent-sms", Status.SENT, (Channel.SMS, Channel.EMAIL))

    _, _, failed_sms = call(
        request("GET", "/api/v1/notifications", {"status": "failed", "channel": "sms"}), lambda_context
    )
    _, _, any_sms = call(request("GET", "/api/v1/notifications", {"channel": "sms"}), lambda_context)

    assert [i["id"] for i in failed_sms["items"]] == ["failed-sms"]
    assert [i["id"] for i in any_sms["items"]] == ["sent-sms", "failed-sms"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "lost"}, "query.status"),
        ({"channel": "fax"}, "query.channel"),
        ({"limit": "0"}, "query.limit"),
        ({"limit": "101"}, "query.limit"),
        ({"limit": "ten"}, "query.limit"),
    ],
)
def test_bad_list_parameters_are_422_naming_them(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext, query: dict[str, str], field: str
) -> None:
    status, _, body = call(request("GET", "/api/v1/notifications", query), lambda_context)
    assert status == 422
    assert [d["field"] for d in body["details"]] == [field]


def test_an_unknown_cursor_is_400_naming_it(api_fakes: ApiFakes, lambda_context: LocalLambdaContext) -> None:
    status, _, body = call(request("GET", "/api/v1/notifications", {"cursor": "forged"}), lambda_context)
    assert (status, body["error"], body["details"][0]["field"]) == (400, "invalid_cursor", "query.cursor")


# --- cancel ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [Status.PENDING, Status.RETRYING])
def test_a_pending_or_retrying_notification_is_cancelled(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext, status: Status
) -> None:
    stored(api_fakes, "n1", status)

    code, _, body = call(request("POST", "/api/v1/notifications/n1/cancel"), lambda_context)

    assert code == 200
    assert (body["status"], body["status_reason"]) == ("cancelled", "cancelled by the client")
    assert api_fakes.repository.sweep_due == {}


@pytest.mark.parametrize("status", [Status.SENT, Status.FAILED, Status.CANCELLED, Status.PROCESSING])
def test_cancel_is_409_once_delivered_failed_cancelled_or_in_a_round(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext, status: Status
) -> None:
    stored(api_fakes, "n1", status)

    code, _, body = call(request("POST", "/api/v1/notifications/n1/cancel"), lambda_context)

    assert (code, body["error"]) == (409, "cannot_cancel")
    assert api_fakes.repository.items["n1"].status is status


def test_cancel_and_retry_of_an_unknown_id_are_404(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    for action in ("cancel", "retry"):
        code, _, _ = call(request("POST", f"/api/v1/notifications/nope/{action}"), lambda_context)
        assert code == 404


def test_a_cancelled_notification_is_never_claimed_by_its_message_in_flight() -> None:
    fakes = ApiFakes()
    repo, queue = fakes.repository, fakes.queue
    stored(fakes, "n1", Status.PENDING)
    repo.cancel("n1", ANONYMOUS, "cancelled by the client", fakes.clock())
    email = FakeProvider(Channel.EMAIL)
    service = DispatchService(
        repo, queue, {Channel.EMAIL: email}, RetryPolicy(3, 2), fakes.clock, "w", timedelta(seconds=60)
    )

    outcome = asyncio.run(service.dispatch(DeliveryMessage("n1", 1, "corr-n1")))

    assert outcome is DispatchOutcome.DROPPED
    assert email.sent == []


# --- retry -----------------------------------------------------------------------------------------


def test_a_failed_notification_is_retried_with_its_next_round_queued(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    stored(api_fakes, "n1", Status.FAILED)

    code, _, body = call(request("POST", "/api/v1/notifications/n1/retry"), lambda_context)

    assert code == 202
    assert (body["status"], body["status_reason"]) == ("retrying", None)
    assert [(m.notification_id, m.round) for m, _ in api_fakes.queue.sent] == [("n1", 4)]


@pytest.mark.parametrize("status", [Status.PENDING, Status.PROCESSING, Status.RETRYING, Status.SENT])
def test_retry_is_409_unless_failed(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext, status: Status
) -> None:
    stored(api_fakes, "n1", status)

    code, _, body = call(request("POST", "/api/v1/notifications/n1/retry"), lambda_context)

    assert (code, body["error"]) == (409, "cannot_retry")
    assert "only a failed notification can be retried" in body["message"]


def test_a_retried_notification_gets_fresh_rounds_and_its_permanent_failures_are_forgiven() -> None:
    # GIVEN a notification that failed its 3 rounds, email permanently and sms transiently
    fakes = ApiFakes()
    repo, queue = fakes.repository, fakes.queue
    stored(fakes, "n1", Status.PENDING, (Channel.EMAIL, Channel.SMS))
    email = FakeProvider(Channel.EMAIL, [permanent("550")])
    sms = FakeProvider(Channel.SMS, [transient("twilio 500")])
    service = DispatchService(
        repo,
        queue,
        {Channel.EMAIL: email, Channel.SMS: sms},
        RetryPolicy(3, 2),
        fakes.clock,
        "w",
        timedelta(seconds=60),
    )
    for round_no in (1, 2, 3):
        asyncio.run(service.dispatch(DeliveryMessage("n1", round_no, "corr-n1")))
    assert repo.get("n1").status is Status.FAILED
    assert len(email.sent) == 1  # skipped in rounds 2 and 3

    # WHEN it is retried and email works now
    NotificationService(repo, queue, fakes.idempotency, fakes.clock).retry("n1", ANONYMOUS)
    email.script = []
    email.sent.clear()
    outcome = asyncio.run(service.dispatch(DeliveryMessage("n1", 4, "corr-n1")))

    # THEN round 4 tries email again, and it is sent
    assert outcome is DispatchOutcome.SENT
    assert len(email.sent) == 1
    assert repo.get("n1").status is Status.SENT


def test_refusals_say_why() -> None:
    assert why_not("cancel", Status.PROCESSING) == "a round is delivering it right now; try again in a moment"
    assert (
        str(TransitionRefused("cancel", "n1", Status.SENT))
        == "cannot cancel notification n1: it is already sent"
    )
