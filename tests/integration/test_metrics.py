"""Metrics kept in the real Redis by every instance, exposed in the Prometheus text format that
the Prometheus client library's own parser reads."""

from __future__ import annotations

import uuid

import pytest
from notification_service.adapters.redis_idempotency import redis_client
from notification_service.adapters.redis_metrics import RedisMetrics
from notification_service.errors import DependencyUnavailable
from prometheus_client.parser import text_string_to_metric_families

from infra.emulator import free_port


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_two_instances_add_to_the_same_counters_and_histograms(redis_url: str) -> None:
    key = f"metrics:test-{uuid.uuid4().hex}"
    api, dispatch = RedisMetrics(redis_client(redis_url), key), RedisMetrics(redis_client(redis_url), key)

    api.count("notifications_accepted_total")
    api.count("notifications_accepted_total", 2)
    dispatch.count("notifications_sent_total", channel="email")
    dispatch.count("delivery_attempts_total", channel="sms", outcome="failed")
    dispatch.observe("notification_delivery_seconds", 0.3)
    dispatch.observe("notification_delivery_seconds", 7.0)
    dispatch.observe("notification_rounds", 2.0)

    text = api.exposition()
    got = samples(text)
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert families["notifications_accepted"] == "counter"
    assert families["notification_delivery_seconds"] == "histogram"
    assert got[("notifications_accepted_total", ())] == 3
    assert got[("notifications_sent_total", (("channel", "email"),))] == 1
    assert got[("delivery_attempts_total", (("channel", "sms"), ("outcome", "failed")))] == 1
    assert got[("notification_delivery_seconds_bucket", (("le", "0.25"),))] == 0
    assert got[("notification_delivery_seconds_bucket", (("le", "0.5"),))] == 1
    assert got[("notification_delivery_seconds_bucket", (("le", "10.0"),))] == 2
    assert got[("notification_delivery_seconds_bucket", (("le", "+Inf"),))] == 2
    assert got[("notification_delivery_seconds_count", ())] == 2
    assert got[("notification_delivery_seconds_sum", ())] == pytest.approx(7.3)
    assert got[("notification_rounds_bucket", (("le", "2.0"),))] == 1


def test_redis_down_is_a_dependency_error() -> None:
    dead = RedisMetrics(redis_client(f"redis://127.0.0.1:{free_port()}/0"), "metrics:x")
    with pytest.raises(DependencyUnavailable):
        dead.count("notifications_accepted_total")
    with pytest.raises(DependencyUnavailable):
        dead.exposition()
