"""Readiness: every dependency answers, or the answer names the ones that do not."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from notification_service.errors import DependencyUnavailable
from notification_service.ports import HealthCheck, ProviderHealth


def check_dependencies(
    checks: Mapping[str, HealthCheck],
    provider_health: ProviderHealth | None = None,
    latency_ms: dict[str, float] | None = None,
    timer: Callable[[], float] = time.perf_counter,
) -> dict[str, str]:
    """Map each dependency to "ok" or the reason it failed (and, into `latency_ms`, how long its check
    took); add each channel whose provider reported a configuration problem recently (bad
    credentials, refused sender)."""
    results: dict[str, str] = {}
    for name, dependency in checks.items():
        started = timer()
        try:
            dependency.check()
        except DependencyUnavailable as exc:
            results[name] = f"unavailable: {exc.detail}"
        else:
            results[name] = "ok"
        if latency_ms is not None:
            latency_ms[name] = round((timer() - started) * 1000, 1)
    if provider_health is not None and results.get("redis", "ok") == "ok":
        try:
            problems = provider_health.problems()
        except DependencyUnavailable as exc:
            results["redis"] = f"unavailable: {exc.detail}"
        else:
            results.update({channel.value: f"configuration error: {p}" for channel, p in problems.items()})
    return results
