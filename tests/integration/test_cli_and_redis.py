"""`notifyctl invoke` (the no-Docker `sam local invoke`) and starting redis-server when none answers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.emulator import free_port
from infra.redis_server import RedisUnavailable, answers, ensure_redis

ROOT = Path(__file__).resolve().parents[2]


def notifyctl(*args: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    env["REDIS_URL"] = redis_url
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", "--env-file", "/nonexistent", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_invoke_runs_a_handler_on_a_sample_event(redis_url: str) -> None:
    done = notifyctl(
        "invoke", "ApiFunction", "--event", "events/api_post_notification.json", redis_url=redis_url
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # only the result on stdout; logs went to stderr
    assert result["statusCode"] == 202
    assert json.loads(result["body"])["status"] == "pending"
    assert '"function_name":"ApiFunction"' in done.stderr.replace(" ", "")


def test_invoke_reports_an_unknown_function(redis_url: str) -> None:
    done = notifyctl("invoke", "NoSuchFunction", "--event", "events/api_get_health.json", redis_url=redis_url)
    assert done.returncode == 1
    assert "no function 'NoSuchFunction'" in json.loads(done.stderr.strip().splitlines()[-1])["errorMessage"]


def test_a_redis_server_is_started_when_none_answers() -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    url = f"redis://127.0.0.1:{free_port()}/0"
    assert not answers(url)
    handle = ensure_redis(url)
    try:
        assert handle.process is not None
        assert answers(handle.url)
    finally:
        handle.stop()
    assert not answers(url)


def test_without_redis_the_error_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(RedisUnavailable, match="apt-get install redis-server"):
        ensure_redis(f"redis://127.0.0.1:{free_port()}/0")


def test_a_remote_redis_that_does_not_answer_is_not_started_here(monkeypatch: pytest.MonkeyPatch) -> None:
    # no connection is attempted: tests only ever talk to loopback
    monkeypatch.setattr("infra.redis_server.answers", lambda _url: False)
    with pytest.raises(RedisUnavailable, match="remote host"):
        ensure_redis("redis://cache.example.internal:6379/0")
