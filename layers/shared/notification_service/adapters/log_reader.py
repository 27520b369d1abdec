"""Reading the functions' CloudWatch log groups (the local stack's, on the emulator, or a deployed
stack's), filtered by correlation id, notification id, level, time or a raw CloudWatch pattern:
`notifyctl logs` (the project's `sam logs`) and the admin page's log lines (CloudWatchLogLines).

The filter is sent to CloudWatch and applied again here: moto accepts JSON filter patterns such as
`{ $.correlation_id = "abc" }` but returns every event, and the answer must be only the matches.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from notification_service.adapters.aws import unavailable
from notification_service.lazy import Lazy
from notification_service.ports import LogLine

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

_DURATION = re.compile(r"^(\d+)([smhd])$")
_JSON_TERM = re.compile(r'\$\.([A-Za-z_][A-Za-z0-9_.]*)\s*(=|!=)\s*"?([^"&|}]*?)"?\s*(?:&&|\}|$)')
POLL_SECONDS = 1.0


def parse_since(text: str) -> int:
    """`10m`, `2h`, `30s`, `1d` -> seconds."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"--since wants a duration like 30s, 10m, 2h or 1d, not {text!r}")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


@dataclass(frozen=True)
class LogFilter:
    correlation_id: str | None = None
    notification_id: str | None = None
    level: str | None = None
    pattern: str | None = None  # a raw CloudWatch filter pattern

    def cloudwatch_pattern(self) -> str | None:
        """What CloudWatch is asked for: the raw pattern, or a JSON pattern of the chosen fields."""
        if self.pattern:
            return self.pattern
        terms = [f'$.{name} = "{value}"' for name, value in self._fields().items()]
        return "{ " + " && ".join(terms) + " }" if terms else None

    def _fields(self) -> dict[str, str]:
        chosen = {
            "correlation_id": self.correlation_id,
            "notification_id": self.notification_id,
            "level": self.level.upper() if self.level else None,
        }
        return {k: v for k, v in chosen.items() if v}

    def matches(self, message: str) -> bool:
        """Ids exactly, as CloudWatch compares them; the level in any case."""
        record = _json(message)
        for name, wanted in self._fields().items():
            actual = str(record.get(name, "")) if record is not None else None
            if actual is None or (actual.upper() if name == "level" else actual) != wanted:
                return False
        return self.pattern is None or pattern_matches(self.pattern, message, record)


def pattern_matches(pattern: str, message: str, record: dict[str, Any] | None) -> bool:
    """CloudWatch's pattern semantics, for the forms this command documents: a JSON pattern of
    `$.field = "value"` / `!=` terms joined by &&, or plain terms that must all appear."""
    text = pattern.strip()
    if text.startswith("{"):
        if record is None:
            return False
        for path, op, value in _JSON_TERM.findall(text):
            actual: Any = record
            for part in path.split("."):
                actual = actual.get(part) if isinstance(actual, dict) else None
            equal = actual is not None and str(actual) == value.strip()
            if equal != (op == "="):
                return False
        return True
    terms = re.findall(r'"([^"]+)"|(\S+)', text)
    return all((quoted or bare) in message for quoted, bare in terms)


def _json(message: str) -> dict[str, Any] | None:
    if not message.startswith("{"):
        return None
    try:
        value = json.loads(message)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


@dataclass
class LogEvent:
    group: str
    timestamp: int
    message: str
    event_id: str = ""

    @property
    def function(self) -> str:
        return self.group.rsplit("/", 1)[-1]

    def readable(self) -> str:
        record = _json(self.message) or {}
        when = datetime.fromtimestamp(self.timestamp / 1000, tz=UTC).strftime("%H:%M:%S.%f")[:-3]
        ids = " ".join(
            f"{key}={record[key]}"
            for key in ("correlation_id", "notification_id", "round", "channel", "outcome")
            if record.get(key) not in (None, "")
        )
        text = record.get("message", self.message) if record else self.message
        level = str(record.get("level", "-"))
        return f"{when}  {self.function:<18} {level:<7} {text}" + (f"  [{ids}]" if ids else "")


@dataclass
class LogReader:
    client: CloudWatchLogsClient
    groups: list[str]
    log_filter: LogFilter = field(default_factory=LogFilter)
    max_pages: int | None = None  # per group: CloudWatch pages through its whole range otherwise

    def read(self, start_ms: int, end_ms: int | None = None) -> list[LogEvent]:
        """Every matching event of every group in [start, end], oldest first."""
        found: list[LogEvent] = []
        for group in self.groups:
            found.extend(self._group(group, start_ms, end_ms))
        found.sort(key=lambda e: (e.timestamp, e.group))
        return found

    def _group(self, group: str, start_ms: int, end_ms: int | None) -> Iterator[LogEvent]:
        request: dict[str, Any] = {"logGroupName": group, "startTime": start_ms}
        if end_ms is not None:
            request["endTime"] = end_ms
        pattern = self.log_filter.cloudwatch_pattern()
        if pattern:
            request["filterPattern"] = pattern
        pages = 0
        while self.max_pages is None or pages < self.max_pages:
            pages += 1
            try:
                answer = self.client.filter_log_events(**request)
            except self.client.exceptions.ResourceNotFoundException:
                return  # a function that has not logged yet
            for event in answer.get("events", []):
                message = event.get("message", "")
                if self.log_filter.matches(message):  # again here: the backend may ignore the pattern
                    yield LogEvent(group, int(event.get("timestamp", 0)), message, event.get("eventId", ""))
            token = answer.get("nextToken")
            if not token:
                return
            request["nextToken"] = token

    def follow(
        self,
        start_ms: int,
        emit: Callable[[LogEvent], None],
        stop: threading.Event,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        """Emit what matches from `start_ms` on, then keep polling for new lines until `stop`."""
        seen: set[tuple[str, str, int]] = set()
        since = start_ms
        while True:
            for event in self.read(since):
                key = (event.group, event.event_id or event.message, event.timestamp)
                if key not in seen:
                    seen.add(key)
                    emit(event)
                    since = max(since, event.timestamp)
            if stop.wait(poll_seconds):
                return


def now_ms() -> int:
    return int(time.time() * 1000)


def groups_for(function_names: Iterable[str]) -> list[str]:
    return [f"/aws/lambda/{name}" for name in function_names]


# What every line of ours carries (Powertools' structure): not shown again among a line's fields.
_BOILERPLATE = frozenset(
    {
        "level",
        "location",
        "message",
        "timestamp",
        "service",
        "sampling_rate",
        "xray_trace_id",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "correlation_id",
    }
)
MAX_LOG_LINES = 500
MAX_PAGES_PER_GROUP = 20


class CloudWatchLogLines:
    """A notification's log lines for the admin page: `notifyctl logs --correlation-id C
    --notification-id N` over the stack's functions' log groups (deployed: the groups of the
    functions named in LOG_GROUPS and the API's own; local: /aws/lambda/<logical id>)."""

    def __init__(self, client: Callable[[], CloudWatchLogsClient], groups: Iterable[str]) -> None:
        self._client = Lazy(client)  # built on first use: most API calls never read logs
        self._groups = list(dict.fromkeys(g for g in groups if g))

    def for_notification(self, notification_id: str, correlation_id: str, since: datetime) -> list[LogLine]:
        """Raises DependencyUnavailable when CloudWatch Logs does not answer."""
        wanted = LogFilter(correlation_id=correlation_id, notification_id=notification_id)
        reader = LogReader(self._client.get(), self._groups, wanted, max_pages=MAX_PAGES_PER_GROUP)
        try:
            events = reader.read(int(since.timestamp() * 1000))
        except (ClientError, BotoCoreError) as exc:
            raise unavailable(exc, "logs") from exc
        return [_line(event) for event in events[-MAX_LOG_LINES:]]  # the newest, oldest first


def _line(event: LogEvent) -> LogLine:
    record = _json(event.message) or {}
    return LogLine(
        timestamp=datetime.fromtimestamp(event.timestamp / 1000, tz=UTC),
        function=event.function,
        level=str(record.get("level", "-")),
        message=str(record.get("message", event.message)),
        fields={k: v for k, v in record.items() if k not in _BOILERPLATE},
    )
