"""The local stack's function logs, shipped to CloudWatch Logs on the emulator where Lambda would put
them on AWS: log group /aws/lambda/<FunctionName>, one log stream per handler instance."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from infra.background import BackgroundLoop

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

FLUSH_SECONDS = 0.5
MAX_BATCH = 1000  # PutLogEvents takes at most 10,000 events or 1 MiB


def log_group(function_name: str) -> str:
    return f"/aws/lambda/{function_name}"


def event_time_ms(line: str) -> int:
    """The line's own time (powertools' `timestamp`), else now."""
    if line.startswith("{"):
        try:
            stamp = json.loads(line).get("timestamp")
            if isinstance(stamp, str):
                return int(datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f%z").timestamp() * 1000)
        except (ValueError, AttributeError):
            pass
    return int(time.time() * 1000)


class CloudWatchLogShipper(BackgroundLoop):
    def __init__(self, client: CloudWatchLogsClient, flush_seconds: float = FLUSH_SECONDS) -> None:
        super().__init__("cloudwatch-log-shipper")
        self._client = client
        self._flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._created: set[tuple[str, str]] = set()
        self.shipped = 0
        self.dropped = 0

    def add(self, function_name: str, stream: str, line: str) -> None:
        if not line.strip():
            return
        with self._lock:
            self._pending.setdefault((log_group(function_name), stream), []).append(
                {"timestamp": event_time_ms(line), "message": line}
            )

    def _run(self) -> None:
        while not self._stop.wait(self._flush_seconds):
            self.flush()

    def stop(self, timeout: float = 10) -> None:
        super().stop(timeout)
        self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for (group, stream), events in pending.items():
            events.sort(key=lambda e: e["timestamp"])
            try:
                self._ensure(group, stream)
                for start in range(0, len(events), MAX_BATCH):
                    batch = events[start : start + MAX_BATCH]
                    self._client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)  # type: ignore[arg-type]
                    self.shipped += len(batch)
            except (ClientError, BotoCoreError):  # the emulator is going away: the lines were printed
                self.dropped += len(events)

    def _ensure(self, group: str, stream: str) -> None:
        if (group, stream) in self._created:
            return
        creations: list[Callable[[], object]] = [
            lambda: self._client.create_log_group(logGroupName=group),
            lambda: self._client.create_log_stream(logGroupName=group, logStreamName=stream),
        ]
        for create in creations:
            try:
                create()
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
                    raise
        self._created.add((group, stream))
