"""The benchmark command end to end on a small run: its report has every key, and the request counts
(which do not depend on the machine's speed) are what the service's design says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra import bench


def test_a_small_benchmark_run_reports_every_figure(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    # WHEN a small benchmark runs
    report = bench.run(
        notifications=20,
        clients=4,
        cold_runs=1,
        batch_repetitions=1,
        provider_latency=0.05,
        output=tmp_path,
        progress=lambda _line: None,
    )
    # THEN the report holds the keys readers compare, on disk too, with the table and the plot beside it
    saved = json.loads((tmp_path / "latest.json").read_text())
    for key in (
        "cold_start.api_ratio",
        "cold_start.dispatch_ratio",
        "batch.ratio",
        "e2e.ratio",
        "e2e.p50_ms",
        "e2e.p99_ms",
        "e2e.delivered_per_s",
        "aws_requests_per_notification",
        "cost_per_million_usd.http_api",
        "cost_per_million_usd.rest_api",
        "machine.cores",
    ):
        value = saved
        for part in key.split("."):
            value = value[part]
        assert value is not None, key
    assert (tmp_path / "latest.md").read_text().startswith("# Benchmark")
    assert (tmp_path / "latency.png").stat().st_size > 0
    # AND every notification was delivered, each with exactly the AWS writes the design makes
    assert report["e2e"]["sent"] == 20
    per_operation = report["aws_requests"]["by_operation"]
    assert per_operation["dynamodb:PutItem"] == 1.0  # accept: store
    assert per_operation["sqs:SendMessage"] == 1.0  # accept: enqueue round 1
    assert per_operation["dynamodb:UpdateItem"] == 2.0  # dispatch: claim (+ first intent), complete
    assert report["aws_requests"]["lambda_invocations"]["api"] == 1.0
    assert report["cost_per_million_usd"]["rest_api"] > report["cost_per_million_usd"]["http_api"]


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert bench.percentile(values, 50) == 50
    assert bench.percentile(values, 99) == 99
    assert bench.percentile([3.0], 99) == 3.0
