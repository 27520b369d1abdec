"""Readiness: every dependency answers, or the answer names the ones that do not."""

from __future__ import annotations

from collections.abc import Mapping

from notification_service.errors import DependencyUnavailable
from notification_service.ports import HealthCheck


def check_dependencies(checks: Mapping[str, HealthCheck]) -> dict[str, str]:
    """Map each dependency to "ok" or the reason it failed."""
    results: dict[str, str] = {}
    for name, dependency in checks.items():
        try:
            dependency.check()
        except DependencyUnavailable as exc:
            results[name] = f"unavailable: {exc.detail}"
        else:
            results[name] = "ok"
    return results
