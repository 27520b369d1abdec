"""Metrics as CloudWatch Embedded Metric Format lines (powertools), one per observation, in the
namespace POWERTOOLS_METRICS_NAMESPACE names (template.yaml sets it)."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit, single_metric


class EmfMetrics:
    def count(self, name: str, value: int = 1, **labels: str) -> None:
        with single_metric(name=name, unit=MetricUnit.Count, value=value) as metric:
            for key, label in labels.items():
                metric.add_dimension(name=key, value=label)

    def observe(self, name: str, value: float, **labels: str) -> None:
        unit = MetricUnit.Seconds if name.endswith("_seconds") else MetricUnit.Count
        with single_metric(name=name, unit=unit, value=value) as metric:
            for key, label in labels.items():
                metric.add_dimension(name=key, value=label)
