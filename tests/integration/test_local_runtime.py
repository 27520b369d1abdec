"""The local stack's Lambda stand-ins: the SQS event source, API Gateway over real HTTP, and handler
instances in worker processes."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.api_gateway import InstancePool, LocalApiGateway, build_event, route_pattern
from infra.emulator import Emulator
from infra.lambda_runtime import FunctionError, WorkerProcess
from infra.provision import Stack
from infra.sam_template import ApiRoute, EventSource, FunctionSpec
from infra.sqs_event_source import SqsEventSource, failed_message_ids, to_sqs_event

SAMPLE = Path(__file__).resolve().parent / "sample_function"


# -- SQS event source ---------------------------------------------------------------------------------
def queue_counts(sqs: Any, url: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


@pytest.fixture
def source_parts(emulator: Emulator, stack: Stack) -> tuple[Any, str, str]:
    sqs = boto3.client("sqs", endpoint_url=emulator.endpoint_url)
    url = stack.outputs["DeliveryQueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return sqs, url, arn


def test_the_event_source_deletes_successes_and_leaves_reported_failures(
    source_parts: tuple[Any, str, str],
) -> None:
    # GIVEN three messages on the queue
    sqs, url, arn = source_parts
    for n in range(3):
        sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps({"n": n}),
            MessageAttributes={"correlation_id": {"DataType": "String", "StringValue": f"c{n}"}},
        )
    seen: list[dict[str, Any]] = []

    def function(event: dict[str, Any]) -> dict[str, Any]:
        seen.append(event)
        bad = [r["messageId"] for r in event["Records"] if json.loads(r["body"])["n"] == 1]
        return {"batchItemFailures": [{"itemIdentifier": i} for i in bad]}

    source = SqsEventSource(sqs, url, arn, "us-east-1", EventSource("DeliveryQueue", 10, 0, True), function)
    # WHEN one batch is polled and handled, the function reporting one failure
    handled = 0
    while handled < 3:
        handled += source.poll_once()
    # THEN the function got real SQS records, two were deleted and the failed one is in flight
    records = [r for event in seen for r in event["Records"]]
    assert {r["eventSource"] for r in records} == {"aws:sqs"}
    assert {r["eventSourceARN"] for r in records} == {arn}
    assert all(r["attributes"]["ApproximateReceiveCount"] == "1" for r in records)
    assert {r["messageAttributes"]["correlation_id"]["stringValue"] for r in records} == {"c0", "c1", "c2"}
    assert queue_counts(sqs, url) == (0, 1)


def test_a_raising_function_leaves_the_whole_batch(source_parts: tuple[Any, str, str]) -> None:
    sqs, url, arn = source_parts
    sqs.send_message(QueueUrl=url, MessageBody="{}")

    def function(event: dict[str, Any]) -> Any:
        raise RuntimeError("crash")

    source = SqsEventSource(sqs, url, arn, "us-east-1", EventSource("DeliveryQueue", 10, 0, True), function)
    assert source.poll_once() == 1
    assert queue_counts(sqs, url) == (0, 1)


def test_failed_message_ids_follow_lambda_rules() -> None:
    event = {"Records": [{"messageId": "a"}, {"messageId": "b"}]}
    assert failed_message_ids({"batchItemFailures": []}, event, True) == set()
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "b"}]}, event, True) == {"b"}
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, event, True) == {"a", "b"}
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "b"}]}, event, False) == set()
    assert failed_message_ids(None, event, True) == set()


def test_to_sqs_event_computes_md5_when_missing() -> None:
    event = to_sqs_event([{"MessageId": "m", "ReceiptHandle": "r", "Body": "x"}], "arn", "us-east-1")
    assert event["Records"][0]["md5OfBody"] == "9dd4e461268c8034f5c8564e155c67a6"


# -- API Gateway --------------------------------------------------------------------------------------
def test_route_patterns() -> None:
    proxy = route_pattern(ApiRoute("/{proxy+}", "ANY"))
    assert proxy.match("/api/v1/notifications/abc")
    assert not proxy.match("/")
    assert route_pattern(ApiRoute("/", "ANY")).match("/")
    one = route_pattern(ApiRoute("/items/{id}", "GET"))
    assert one.match("/items/7")
    assert not one.match("/items/7/more")


def test_build_event_is_an_api_gateway_proxy_event() -> None:
    headers = [("Content-Type", "application/json"), ("X-Multi", "1"), ("X-Multi", "2")]
    event = build_event("POST", "/api/v1/x?a=1&a=2&b=", headers, b'{"k": 1}', "127.0.0.9")
    assert event["path"] == "/api/v1/x"
    assert event["httpMethod"] == "POST"
    assert event["body"] == '{"k": 1}'
    assert event["isBase64Encoded"] is False
    assert event["multiValueHeaders"]["X-Multi"] == ["1", "2"]
    assert event["queryStringParameters"] == {"a": "2", "b": ""}
    assert event["multiValueQueryStringParameters"]["a"] == ["1", "2"]
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.9"
    binary = build_event("PUT", "/f", [("Content-Type", "application/octet-stream")], b"\xff\x00", "::1")
    assert binary["isBase64Encoded"] is True
    assert binary["body"] == "/wA="


def request(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_the_gateway_turns_requests_into_events_and_answers_into_responses() -> None:
    events: list[dict[str, Any]] = []

    def function(event: dict[str, Any]) -> dict[str, Any]:
        events.append(event)
        if event["path"] == "/boom":
            raise RuntimeError("handler crashed")
        return {
            "statusCode": 201,
            "headers": {"X-One": "1"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": json.dumps({"seen": event["body"]}),
            "isBase64Encoded": False,
        }

    pool = InstancePool([function])
    gateway = LocalApiGateway([(ApiRoute("/{proxy+}", "ANY"), pool)], "127.0.0.1", 0)
    gateway.start()
    try:
        base = f"http://127.0.0.1:{gateway.port}"
        status, headers, body = request(f"{base}/echo?x=1", "POST", b'{"a": 1}')
        assert status == 201
        assert json.loads(body) == {"seen": '{"a": 1}'}
        assert headers["X-One"] == "1"
        assert events[0]["queryStringParameters"] == {"x": "1"}
        assert request(f"{base}/boom")[0] == 502
        assert request(f"{base}/")[0] == 403  # no route for / in this gateway
    finally:
        gateway.stop()


# -- handler instances in worker processes ------------------------------------------------------------
@pytest.fixture
def worker() -> Any:
    spec = FunctionSpec(
        logical_id="SampleFunction",
        code_dir=SAMPLE,
        handler="app.lambda_handler",
        runtime="python3.11",
        timeout_seconds=2,
        memory_mb=128,
        environment={},
    )
    lines: list[tuple[str, str, str]] = []
    process = WorkerProcess(
        spec, {"SAMPLE_VARIABLE": "from-template"}, "sample-fn", lambda f, s, line: lines.append((f, s, line))
    )
    process.lines = lines  # type: ignore[attr-defined]
    yield process
    process.stop()


def test_a_worker_runs_the_handler_with_its_environment(worker: Any) -> None:
    result = worker.invoke({"value": 41})
    assert result == {
        "echo": 41,
        "function_name": "sample-fn",
        "env": "from-template",
        "remaining_ms_positive": True,
    }
    assert worker.invoke({"value": 42})["echo"] == 42


def test_a_raising_handler_is_a_function_error_and_the_instance_survives(worker: Any) -> None:
    with pytest.raises(FunctionError, match="ValueError: asked to fail"):
        worker.invoke({"action": "raise"})
    assert worker.invoke({"value": 1})["echo"] == 1


def test_a_crashed_instance_is_replaced(worker: Any) -> None:
    worker.invoke({"value": 0})
    with pytest.raises(FunctionError, match="exited"):
        worker.invoke({"action": "exit"})
    assert worker.invoke({"value": 2})["echo"] == 2


def test_a_hung_handler_times_out_and_is_replaced(worker: Any) -> None:
    with pytest.raises(FunctionError, match="timed out"):
        worker.invoke({"action": "hang"})
    assert worker.invoke({"value": 3})["echo"] == 3
