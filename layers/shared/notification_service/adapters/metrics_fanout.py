"""Every observation to every metrics sink; a sink that fails is logged and skipped: metrics never
fail a request or a round."""

from __future__ import annotations

from collections.abc import Sequence

from aws_lambda_powertools import Logger

from notification_service.ports import Metrics

logger = Logger(child=True)


class MetricsFanout:
    def __init__(self, sinks: Sequence[Metrics]) -> None:
        self._sinks = list(sinks)

    def count(self, name: str, value: int = 1, **labels: str) -> None:
        for sink in self._sinks:
            try:
                sink.count(name, value, **labels)
            except Exception as exc:
                logger.warning("metric not recorded", extra={"metric": name, "error": type(exc).__name__})

    def observe(self, name: str, value: float, **labels: str) -> None:
        for sink in self._sinks:
            try:
                sink.observe(name, value, **labels)
            except Exception as exc:
                logger.warning("metric not recorded", extra={"metric": name, "error": type(exc).__name__})
