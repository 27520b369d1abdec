"""Shared fixtures: a Lambda context, events from events/, and (session-wide) a real Redis server."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.emulator import free_port
from infra.lambda_runtime import LocalLambdaContext
from infra.redis_server import answers, ensure_redis

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
DEFAULT_TEST_REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
def lambda_context() -> LocalLambdaContext:
    return LocalLambdaContext(function_name="test-function", memory_limit_in_mb=512, timeout_seconds=30)


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """REDIS_URL when it answers; else a redis-server started for the session on a free port."""
    wanted = os.environ.get("REDIS_URL") or DEFAULT_TEST_REDIS
    handle = ensure_redis(wanted if answers(wanted) else f"redis://127.0.0.1:{free_port()}/0")
    yield handle.url
    handle.stop()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos", "the chaos test (tests/e2e/test_chaos.py)")
    group.addoption("--chaos-seed", type=int, default=int(os.environ.get("CHAOS_SEED", "7")))
    group.addoption(
        "--chaos-n",
        type=int,
        default=int(os.environ.get("CHAOS_N", "300")),
        help="notifications (>= 300 in CI)",
    )
    group.addoption(
        "--chaos-uncertain",
        choices=["skip", "resend", "both"],
        default=os.environ.get("CHAOS_UNCERTAIN") or "skip",
        help="UNCERTAIN_SENDS of the stack under test: skip (the default setting; what `make test` runs), "
        "resend, or both (what `make chaos` runs)",
    )
