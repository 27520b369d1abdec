"""What the service counts, and that a failing metrics sink never fails the work."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from notification_service.adapters.emf_metrics import EmfMetrics
from notification_service.adapters.metrics_fanout import MetricsFanout
from notification_service.domain.model import Channel
from notification_service.domain.recipient import Recipient
from notification_service.domain.retry_policy import RetryPolicy
from notification_service.errors import DependencyUnavailable
from notification_service.ports import DeliveryMessage
from notification_service.service.dispatch import DispatchService
from notification_service.service.notifications import NewNotification, NotificationService

from tests.fakes import ApiFakes, FakeProvider, transient


class Recorder:
    def __init__(self) -> None:
        self.counts: list[tuple[str, int, dict[str, str]]] = []
        self.observed: list[tuple[str, float]] = []

    def count(self, name: str, value: int = 1, **labels: str) -> None:
        self.counts.append((name, value, labels))

    def observe(self, name: str, value: float, **labels: str) -> None:
        self.observed.append((name, value))


class Broken:
    def count(self, name: str, value: int = 1, **labels: str) -> None:
        raise DependencyUnavailable("redis", "down")

    def observe(self, name: str, value: float, **labels: str) -> None:
        raise RuntimeError("boom")


def test_accepting_and_delivering_are_counted() -> None:
    fakes, recorder = ApiFakes(), Recorder()
    accepted = NotificationService(
        fakes.repository, fakes.queue, fakes.idempotency, fakes.clock, metrics=recorder
    ).accept(
        NewNotification(
            Recipient(email="a@example.com", phone="+447911123456"), "hi", (Channel.EMAIL, Channel.SMS)
        ),
        "c",
    )
    fakes.clock.advance(3)
    providers = {
        Channel.EMAIL: FakeProvider(Channel.EMAIL, [transient()]),
        Channel.SMS: FakeProvider(Channel.SMS),
    }
    service = DispatchService(
        fakes.repository,
        fakes.queue,
        dict(providers),
        RetryPolicy(3, 2),
        fakes.clock,
        "w",
        timedelta(seconds=60),
        metrics=recorder,
    )

    asyncio.run(service.dispatch(DeliveryMessage(accepted.id, 1, "c")))

    assert recorder.counts == [
        ("notifications_accepted_total", 1, {}),
        ("delivery_attempts_total", 1, {"channel": "email", "outcome": "failed"}),
        ("delivery_attempts_total", 1, {"channel": "sms", "outcome": "sent"}),
        ("notifications_sent_total", 1, {"channel": "sms"}),
    ]
    assert recorder.observed == [("notification_delivery_seconds", 3.0), ("notification_rounds", 1.0)]


def test_a_failing_sink_is_skipped_and_the_others_still_record() -> None:
    recorder = Recorder()
    fanout = MetricsFanout([Broken(), recorder])

    fanout.count("notifications_failed_total")
    fanout.observe("notification_rounds", 3.0)

    assert recorder.counts == [("notifications_failed_total", 1, {})]
    assert recorder.observed == [("notification_rounds", 3.0)]


def test_emf_lines_carry_the_metric_and_its_dimensions(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "NotificationService")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "notification-service")

    EmfMetrics().count("delivery_attempts_total", channel="sms", outcome="sent")
    EmfMetrics().observe("notification_delivery_seconds", 1.5)

    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first["delivery_attempts_total"] == [1.0] or first["delivery_attempts_total"] == 1.0
    assert (first["channel"], first["outcome"]) == ("sms", "sent")
    assert first["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "NotificationService"
    assert second["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] == "Seconds"


def test_metrics_route_without_a_source_is_503(api_fakes: ApiFakes, lambda_context: object) -> None:
    from tests.unit.test_api_handler import call
    from tests.unit.test_lifecycle import request

    status, _, body = call(request("GET", "/metrics"), lambda_context)  # type: ignore[arg-type]
    assert (status, body["error"]) == (503, "service_unavailable")
