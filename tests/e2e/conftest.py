"""The local stack (`notifyctl local`) in a subprocess, driven over HTTP as a user would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from notification_service.domain.api_keys import new_key

from infra.emulator import free_port

ROOT = Path(__file__).resolve().parents[2]
STARTUP_DEADLINE_SECONDS = 120
TERMINAL = {"sent", "partially_sent", "failed", "cancelled", "delivered", "undelivered"}
# Every e2e stack asks for API keys: requests carry KEY unless a test says otherwise; OTHER_KEY is a
# second client, who must not see the first one's notifications.
KEY, KEY_ENTRY = new_key("e2e")
OTHER_KEY, OTHER_ENTRY = new_key("other")
NO_KEY = ""
# Rate limits are off but on the stack that tests them (the tests send many to one address).
NO_LIMITS = {"RATE_LIMIT_PER_KEY_PER_SECOND": "0", "RATE_LIMIT_PER_RECIPIENT_PER_HOUR": "0"}
# Webhooks signed with a secret the tests know, retried 1 s, 3 s, ... apart.
WEBHOOK_SECRET = "whsec_e2e-secret"
WEBHOOKS = {"WEBHOOK_SECRET": WEBHOOK_SECRET, "WEBHOOK_BACKOFF_SECONDS": "1"}


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.raw = body

    def json(self) -> Any:
        return json.loads(self.raw)


class RunningStack:
    def __init__(
        self, name: str, log_dir: Path, redis_url: str, env: dict[str, str], extra_args: tuple[str, ...] = ()
    ) -> None:
        self.port = free_port()
        self.emulator_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.emulator_url = f"http://127.0.0.1:{self.emulator_port}"
        self.log_path = log_dir / f"{name}.log"
        environ = {k: v for k, v in os.environ.items() if k not in {"AWS_ENDPOINT_URL", "MOCK_FAIL_CHANNELS"}}
        environ.update(
            {"REDIS_URL": redis_url, "API_KEYS": f"{KEY_ENTRY},{OTHER_ENTRY}", **NO_LIMITS, **WEBHOOKS, **env}
        )
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "infra.cli",
                "--env-file",
                "/nonexistent",
                "local",
                "--port",
                str(self.port),
                "--emulator-port",
                str(self.emulator_port),
                "--stack-name",
                f"e2e-{name}",
                "--api-instances",
                "2",
                "--pollers",
                "1",
                *extra_args,
            ],
            cwd=ROOT,
            env=environ,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_serving()

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the local stack exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if self.request("GET", "/health").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the local stack did not serve in time:\n{self.log_path.read_text()[-3000:]}")

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        key: str = KEY,
    ) -> Answer:
        """`key` is sent as X-API-Key (NO_KEY: none)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        all_headers = {
            "Content-Type": "application/json",
            **({"X-API-Key": key} if key else {}),
            **(headers or {}),
        }
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                return Answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, dict(error.headers), error.read())

    def post(self, body: Any, headers: dict[str, str] | None = None, key: str = KEY) -> Answer:
        return self.request("POST", "/api/v1/notifications", body, headers, key=key)

    def wait_terminal(self, notification_id: str, timeout: float = 90) -> dict[str, Any]:
        """Poll the record until it is terminal (the deadline only guards against a hang)."""
        return self.wait_for(notification_id, lambda record: record["status"] in TERMINAL, timeout)

    def wait_for(
        self, notification_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 90
    ) -> dict[str, Any]:
        """Poll the record until `done` says so (the deadline only guards against a hang)."""
        deadline = time.monotonic() + timeout
        while True:
            record: dict[str, Any] = self.request("GET", f"/api/v1/notifications/{notification_id}").json()
            if done(record):
                return record
            if time.monotonic() > deadline:
                raise AssertionError(f"{notification_id} still {record['status']}: {record}")
            time.sleep(0.1)

    def aws(self, service: str) -> Any:
        """A boto3 client on this stack's emulator."""
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.emulator_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def table_name(self) -> str:
        return str(
            next(t for t in self.aws("dynamodb").list_tables()["TableNames"] if "NotificationsTable" in t)
        )

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return lines

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@pytest.fixture(scope="session")
def e2e_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e-logs")


def _stack(
    name: str, logs: Path, redis_url: str, env: dict[str, str], extra_args: tuple[str, ...] = ()
) -> Iterator[RunningStack]:
    running = RunningStack(name, logs, redis_url, env, extra_args)
    yield running
    running.stop()
    assert running.process.returncode == 0, running.log_path.read_text()[-3000:]


@pytest.fixture(scope="session")
def stack(e2e_logs: Path, redis_url: str) -> Iterator[RunningStack]:
    yield from _stack("default", e2e_logs, redis_url, {})


@pytest.fixture(scope="session")
def limited_stack(e2e_logs: Path, redis_url: str) -> Iterator[RunningStack]:
    """Rate limits low enough to reach: a burst of 3 per key (1 more per 10 s), 2 per recipient per hour."""
    limits = {
        "RATE_LIMIT_PER_KEY_PER_SECOND": "0.1",
        "RATE_LIMIT_PER_KEY_BURST": "3",
        "RATE_LIMIT_PER_RECIPIENT_PER_HOUR": "2",
    }
    yield from _stack("limited", e2e_logs, redis_url, limits)


@pytest.fixture(scope="session")
def email_failing_stack(e2e_logs: Path, redis_url: str) -> Iterator[RunningStack]:
    yield from _stack("email-failing", e2e_logs, redis_url, {"MOCK_FAIL_CHANNELS": "email"})


@pytest.fixture(scope="session")
def all_failing_stack(e2e_logs: Path, redis_url: str) -> Iterator[RunningStack]:
    yield from _stack("all-failing", e2e_logs, redis_url, {"MOCK_FAIL_CHANNELS": "email,sms,telegram"})


@pytest.fixture(scope="session")
def sinks_stack(e2e_logs: Path, redis_url: str) -> Iterator[RunningStack]:
    """The real providers, pointed at local SMTP, Twilio and Telegram peers (`notifyctl local --sinks`)."""
    inbox = e2e_logs / "sinks.jsonl"
    yield from _stack("sinks", e2e_logs, redis_url, {}, ("--sinks", "--inbox", str(inbox)))


@pytest.fixture(scope="session")
def sweeping_stack(e2e_logs: Path, redis_url: str) -> Iterator[RunningStack]:
    """The sweeper on a short schedule and grace, so stuck records are repaired within seconds; SQS
    delays of at most 1 s, so a schedule a few seconds ahead hops as one 15 minutes ahead would."""
    yield from _stack(
        "sweeping",
        e2e_logs,
        redis_url,
        {"SWEEP_GRACE_SECONDS": "1", "DELIVERY_VISIBILITY_TIMEOUT": "1", "SCHEDULE_HOP_SECONDS": "1"},
        ("--schedule-every", "0.5"),
    )
