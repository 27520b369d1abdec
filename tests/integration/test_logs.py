"""Function logs in CloudWatch Logs on the emulator: shipped as Lambda would put them, and read back
filtered by `notifyctl logs` (the filter applied again here, since moto ignores JSON patterns)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import boto3
import pytest
from botocore.config import Config
from notification_service.adapters.log_reader import (
    CloudWatchLogLines,
    LogEvent,
    LogFilter,
    LogReader,
    now_ms,
    parse_since,
    pattern_matches,
)
from notification_service.errors import DependencyUnavailable

from infra.emulator import Emulator
from infra.log_shipping import CloudWatchLogShipper, event_time_ms

NOON_MS = int(datetime(2026, 11, 25, 12, tzinfo=UTC).timestamp() * 1000)


def line(level: str, message: str, **keys: object) -> str:
    return json.dumps(
        {"level": level, "message": message, "timestamp": "2026-11-25 12:00:00,000+0000", **keys}
    )


@pytest.fixture
def logs(emulator: Emulator) -> object:
    return boto3.client("logs", endpoint_url=emulator.endpoint_url)


def test_shipped_lines_land_in_one_group_per_function_and_a_stream_per_instance(logs: object) -> None:
    shipper = CloudWatchLogShipper(logs)  # type: ignore[arg-type]
    shipper.add("ShipApi", "2026/11/25/[$LATEST]aaa", line("INFO", "accepted", correlation_id="c1"))
    shipper.add("ShipApi", "2026/11/25/[$LATEST]bbb", "not json at all")
    shipper.add(
        "ShipDispatch", "2026/11/25/[$LATEST]ccc", line("INFO", "round finished", correlation_id="c1")
    )
    shipper.add("ShipDispatch", "2026/11/25/[$LATEST]ccc", "   ")
    shipper.flush()

    client = logs
    streams = client.describe_log_streams(logGroupName="/aws/lambda/ShipApi")["logStreams"]  # type: ignore[attr-defined]
    assert sorted(s["logStreamName"] for s in streams) == [
        "2026/11/25/[$LATEST]aaa",
        "2026/11/25/[$LATEST]bbb",
    ]
    assert shipper.shipped == 3


def test_reading_filters_by_id_and_level_even_where_the_backend_ignores_json_patterns(logs: object) -> None:
    # GIVEN lines of two requests in two functions
    shipper = CloudWatchLogShipper(logs)  # type: ignore[arg-type]
    shipper.add("ReadApi", "s1", line("INFO", "accepted", correlation_id="want", notification_id="n1"))
    shipper.add("ReadApi", "s1", line("INFO", "accepted", correlation_id="other", notification_id="n2"))
    shipper.add(
        "ReadDispatch", "s2", line("ERROR", "round failed", correlation_id="want", notification_id="n1")
    )
    shipper.add("ReadDispatch", "s2", line("INFO", "round finished", correlation_id="other"))
    shipper.flush()
    groups = ["/aws/lambda/ReadApi", "/aws/lambda/ReadDispatch", "/aws/lambda/NeverLogged"]

    def read(log_filter: LogFilter) -> list[tuple[str, str]]:
        events = LogReader(logs, groups, log_filter).read(0)  # type: ignore[arg-type]
        return [(e.function, json.loads(e.message)["message"]) for e in events]

    # THEN the emulator alone would return every line for a JSON pattern; the reader returns the matches
    raw = logs.filter_log_events(  # type: ignore[attr-defined]
        logGroupName="/aws/lambda/ReadApi", filterPattern='{ $.correlation_id = "want" }'
    )["events"]
    assert len(raw) == 2
    assert read(LogFilter(correlation_id="want")) == [
        ("ReadApi", "accepted"),
        ("ReadDispatch", "round failed"),
    ]
    assert read(LogFilter(notification_id="n2")) == [("ReadApi", "accepted")]
    assert read(LogFilter(level="error")) == [("ReadDispatch", "round failed")]
    assert read(LogFilter(pattern='{ $.correlation_id != "want" }')) == [
        ("ReadApi", "accepted"),
        ("ReadDispatch", "round finished"),
    ]
    assert read(LogFilter(pattern="finished")) == [("ReadDispatch", "round finished")]


def test_follow_emits_what_is_there_then_new_lines_until_stopped(logs: object) -> None:
    shipper = CloudWatchLogShipper(logs)  # type: ignore[arg-type]
    shipper.add("FollowApi", "s", json.dumps({"level": "INFO", "message": "first"}))
    shipper.flush()
    reader = LogReader(logs, ["/aws/lambda/FollowApi"])  # type: ignore[arg-type]
    seen: list[str] = []
    stop = threading.Event()

    def emit(event: LogEvent) -> None:
        seen.append(json.loads(event.message)["message"])
        if len(seen) == 1:  # a new line arrives while following
            shipper.add("FollowApi", "s", json.dumps({"level": "INFO", "message": "second"}))
            shipper.flush()
        else:
            stop.set()

    reader.follow(now_ms() - 60_000, emit, stop, poll_seconds=0.05)

    assert seen == ["first", "second"]


def test_small_parts_of_the_query() -> None:
    assert [parse_since(s) for s in ("30s", "10m", "2h", "1d")] == [30, 600, 7200, 86400]
    with pytest.raises(ValueError, match="--since"):
        parse_since("yesterday")
    assert LogFilter(correlation_id="c", level="error").cloudwatch_pattern() == (
        '{ $.correlation_id = "c" && $.level = "ERROR" }'
    )
    assert LogFilter().cloudwatch_pattern() is None
    assert pattern_matches('"round finished" ERROR', "ERROR: round finished", None)
    assert not pattern_matches('{ $.a = "b" }', "plain text", None)
    assert event_time_ms("plain") > 0
    assert event_time_ms(line("INFO", "x")) == NOON_MS
    readable = LogEvent("/aws/lambda/Api", NOON_MS, line("INFO", "hi", correlation_id="c1")).readable()
    assert readable == "12:00:00.000  Api                INFO    hi  [correlation_id=c1]"


def test_a_notifications_log_lines_are_its_own_in_the_named_groups(logs: object) -> None:
    # GIVEN lines of one notification in two functions, another notification of another caller that
    # reuses its correlation id, and a function of another stack
    shipper = CloudWatchLogShipper(logs)  # type: ignore[arg-type]
    mine = {"correlation_id": "c-admin", "notification_id": "n9"}
    shipper.add("shop-ApiFunction-1", "s1", line("INFO", "notification accepted", **mine, caller="ops"))
    dispatch = "shop-DispatchFunction-2"
    shipper.add(dispatch, "s2", line("INFO", "round finished", round=1, outcome="sent", **mine))
    shipper.add(dispatch, "s2", line("INFO", "round finished", correlation_id="c-admin", notification_id="x"))
    shipper.add(
        dispatch, "s2", line("INFO", "round finished", correlation_id="C-ADMIN", notification_id="n9")
    )
    shipper.add("other-DispatchFunction-3", "s3", line("INFO", "elsewhere", **mine))
    shipper.flush()
    groups = ["/aws/lambda/shop-ApiFunction-1", f"/aws/lambda/{dispatch}", "/aws/lambda/shop-Never", ""]
    source = CloudWatchLogLines(lambda: logs, groups)  # type: ignore[arg-type, return-value]

    # WHEN the notification's lines are asked for
    lines = source.for_notification("n9", "c-admin", datetime(2026, 11, 25, tzinfo=UTC))

    # THEN they are exactly its lines in the named groups, with their own fields, not the boilerplate
    assert [(x.function, x.message, x.level) for x in lines] == [
        ("shop-ApiFunction-1", "notification accepted", "INFO"),
        ("shop-DispatchFunction-2", "round finished", "INFO"),
    ]
    assert lines[0].fields == {"notification_id": "n9", "caller": "ops"}
    assert lines[1].fields == {"notification_id": "n9", "round": 1, "outcome": "sent"}


def test_unreadable_logs_are_a_dependency_error() -> None:
    unreachable = boto3.client(
        "logs",
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    with pytest.raises(DependencyUnavailable) as caught:
        CloudWatchLogLines(lambda: unreachable, ["/aws/lambda/x"]).for_notification(
            "n", "c", datetime.now(UTC)
        )
    assert caught.value.dependency == "logs"
