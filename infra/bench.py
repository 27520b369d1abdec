"""`make bench` / `notifyctl bench`: cold start, batch concurrency, end-to-end throughput on the local
stack, AWS requests per notification and cost per million — each figure a ratio against a baseline
measured in the same run, so it holds on a noisy shared machine. Timings live here, never in tests.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from notification_service.delivery_message import encode
from notification_service.ports import DeliveryMessage

from infra.api_gateway import build_event
from infra.lambda_runtime import WorkerProcess
from infra.local_stack import LocalStack, LocalStackConfig, function_environment
from infra.provision import EnvironmentResolver
from infra.sam_template import PROJECT_ROOT
from infra.sinks import LOCAL_TELEGRAM_TOKEN, Inbox, TelegramSink

RESULTS = PROJECT_ROOT / "bench" / "results"
TERMINAL = ("sent", "failed", "cancelled")

# AWS list prices, us-east-1, as published on the AWS pricing pages for Lambda, API Gateway, DynamoDB
# (on-demand, after the November 2024 reduction) and SQS; checked 2026-11-25. Free tiers ignored.
PRICES_DATE = "2026-11-25"
PRICES_SOURCE = "aws.amazon.com/{lambda,api-gateway,dynamodb,sqs}/pricing, us-east-1 list prices"
PRICES = {
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second_x86": 0.0000166667,
    "http_api_request": 1.00 / 1e6,
    "rest_api_request": 3.50 / 1e6,
    "dynamodb_write_request_unit": 0.625 / 1e6,
    "dynamodb_read_request_unit": 0.125 / 1e6,
    "sqs_request": 0.40 / 1e6,
}
LAMBDA_MEMORY_GB = 0.5  # template.yaml's MemorySize
DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"}
DYNAMODB_READS = {"GetItem", "Query", "BatchGetItem"}
BENCH_ONLY = {"dynamodb:Scan"}  # the benchmark's own polling; the service never scans
# Calls the local stack makes on the functions' behalf, as the Lambda service does on AWS (log shipping
# to CloudWatch Logs, billed per GB ingested, not per request): reported, not counted as the service's.
PLATFORM_SERVICES = {"logs"}

# The benchmark's stacks: no API keys (its clients send none) and rate limits far above what the run sends.
UNREACHABLE_LIMITS = {
    "API_KEYS": "",
    "RATE_LIMIT_PER_KEY_PER_SECOND": "1000000",
    "RATE_LIMIT_PER_KEY_BURST": "1000000",
    "RATE_LIMIT_PER_RECIPIENT_PER_HOUR": "100000000",
}


def dynamodb_item_bytes(value: Any, name: str = "") -> int:
    """An attribute's size as DynamoDB bills it (its name + its value: strings and binaries by length,
    numbers ~1 byte per 2 digits + 1, lists and maps 3 bytes + 1 per element + their contents), for a
    value in DynamoDB's JSON form ({"S": ...}, {"N": ...}, {"M": ...}, ...)."""
    size = len(name.encode())
    kind, inner = next(iter(value.items()))
    if kind in ("S", "B"):
        return size + len(str(inner).encode())
    if kind == "N":
        return size + len(str(inner).lstrip("-").replace(".", "").lstrip("0")) // 2 + 2
    if kind in ("BOOL", "NULL"):
        return size + 1
    if kind == "M":
        return size + 3 + sum(1 + dynamodb_item_bytes(v, k) for k, v in inner.items())
    if kind == "L":
        return size + 3 + sum(1 + dynamodb_item_bytes(v) for v in inner)
    return size + sum(len(str(x).encode()) for x in inner)  # SS, NS, BS


# -- small statistics ---------------------------------------------------------------------------------
def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


# -- 1. cold start ------------------------------------------------------------------------------------
def _import_seconds(statement: str, path: Path | None) -> float:
    setup = f"import sys; sys.path.insert(0, {str(path)!r}); " if path else ""
    code = f"{setup}import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    # the environment Lambda gives a function (the X-Ray SDK, for one, skips its sampling client there)
    env = {
        **os.environ,
        "POWERTOOLS_SERVICE_NAME": "notification-service",
        "LAMBDA_TASK_ROOT": str(path or PROJECT_ROOT),
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
    }
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return float(done.stdout.strip().splitlines()[-1])


def cold_start(runs: int) -> dict[str, Any]:
    """Each handler module imported in a fresh interpreter, against one that only imports boto3;
    interleaved so that machine noise hits all three alike."""
    times: dict[str, list[float]] = {"boto3": [], "api": [], "dispatch": []}
    for _ in range(runs):
        times["boto3"].append(_import_seconds("import boto3", None))
        times["api"].append(_import_seconds("import app", PROJECT_ROOT / "functions" / "api"))
        times["dispatch"].append(_import_seconds("import app", PROJECT_ROOT / "functions" / "dispatch"))
    med = {name: statistics.median(values) for name, values in times.items()}
    return {
        "runs": runs,
        "boto3_ms": _ms(med["boto3"]),
        "api_ms": _ms(med["api"]),
        "dispatch_ms": _ms(med["dispatch"]),
        "api_ratio": round(med["api"] / med["boto3"], 2),
        "dispatch_ratio": round(med["dispatch"] / med["boto3"], 2),
        "deployment_kb": deployment_sizes(),
    }


def deployment_sizes(build_dir: Path = PROJECT_ROOT / ".aws-sam" / "build") -> dict[str, float] | None:
    """Sizes in KB of what `sam build` made (`make bench` runs it first), or None without a build."""
    if not build_dir.is_dir():
        return None
    sizes = {}
    for entry in sorted(build_dir.iterdir()):
        if entry.is_dir():
            total = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
            sizes[entry.name] = round(total / 1e3, 1)
    return sizes


# -- shared helpers -------------------------------------------------------------------------------------
@contextmanager
def _environment(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _post_event(body: dict[str, Any]) -> dict[str, Any]:
    headers = [("Content-Type", "application/json"), ("Host", "bench")]
    return build_event("POST", "/api/v1/notifications", headers, json.dumps(body).encode(), "127.0.0.1")


def _sqs_event(ids: list[str]) -> dict[str, Any]:
    now = str(int(time.time() * 1000))
    records = []
    for notification_id in ids:
        body = encode(DeliveryMessage(notification_id, 1, f"bench-{notification_id}"))
        records.append(
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "bench",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": now,
                    "SenderId": "bench",
                    "ApproximateFirstReceiveTimestamp": now,
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench",
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}


# -- 2. batch concurrency ---------------------------------------------------------------------------------
def batch(latency_seconds: float, repetitions: int) -> dict[str, Any]:
    """DispatchFunction on 10 records whose provider takes `latency_seconds` each (a Telegram peer with
    injected latency), against one record alone. Sequential processing would give about 10."""
    sink = TelegramSink(Inbox(), LOCAL_TELEGRAM_TOKEN, latency_seconds=latency_seconds).start()
    env = {
        "TELEGRAM_BOT_TOKEN": LOCAL_TELEGRAM_TOKEN,
        "TELEGRAM_API_BASE": sink.base_url,
        "LAMBDA_TASK_ROOT": str(PROJECT_ROOT / "functions" / "dispatch"),
        **UNREACHABLE_LIMITS,  # every record goes to one chat: a per-recipient limit would refuse some
    }
    stack = LocalStack(LocalStackConfig(serve=False, emulator_port=0, stack_name="bench-batch"))
    dispatch: WorkerProcess | None = None
    with _environment(**env):  # the stack stops inside: it restores the environment it started in
        try:
            stack.start()
            assert stack.template is not None and stack.stack is not None
            api = stack.instance("ApiFunction")
            # the handler in its own process, as in Lambda: not sharing this one's GIL with the emulator
            spec = stack.template.function("DispatchFunction")
            resolver = EnvironmentResolver(stack.stack, stack.template)
            dispatch = WorkerProcess(
                spec,
                function_environment(spec, resolver, dict(os.environ)),
                spec.logical_id,
                lambda _f, _s, _line: None,
            )
            dispatch.start()
            dispatch.wait_ready()

            def accepted(count: int) -> list[str]:
                body = {
                    "recipient": {"telegram_chat_id": "123456789"},
                    "message": "bench",
                    "channels": ["telegram"],
                }
                return [json.loads(api.invoke(_post_event(body))["body"])["id"] for _ in range(count)]

            def timed(count: int) -> float:
                event = _sqs_event(accepted(count))
                started = time.perf_counter()
                result = dispatch.invoke(event)
                elapsed = time.perf_counter() - started
                if result["batchItemFailures"]:
                    raise RuntimeError(f"benchmark batch failed: {result}")
                return elapsed

            timed(1)  # the cold start is not what this measures
            one, ten = [], []
            for _ in range(repetitions):
                one.append(timed(1))
                ten.append(timed(10))
        finally:
            if dispatch is not None:
                dispatch.stop()
            stack.stop()
            sink.stop()
    return {
        "provider_latency_ms": _ms(latency_seconds),
        "repetitions": repetitions,
        "one_record_ms": _ms(statistics.median(one)),
        "ten_records_ms": _ms(statistics.median(ten)),
        "ratio": round(statistics.median(ten) / statistics.median(one), 2),
    }


# -- 3 and 4. end to end, AWS requests, cost ---------------------------------------------------------------
@dataclass
class _Items:
    table: str
    client: Any

    def scan(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.table}
        while True:
            page = self.client.scan(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _post(url: str, body: dict[str, Any]) -> str:
    request = urllib.request.Request(  # noqa: S310 - the local stack's own http URL
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
        notification_id: str = json.loads(answer.read())["id"]
        return notification_id


def end_to_end(notifications: int, clients: int) -> dict[str, Any]:
    # the stack restores, when it stops, the environment it started in: the limits end with it
    with _environment(**UNREACHABLE_LIMITS):
        return _end_to_end(notifications, clients)


def _end_to_end(notifications: int, clients: int) -> dict[str, Any]:
    stack = LocalStack(LocalStackConfig(port=0, emulator_port=0, stack_name="bench-e2e"))
    try:
        stack.start()
        assert stack.emulator is not None and stack.gateway is not None
        endpoint = stack.emulator.endpoint_url
        items = _Items(stack.environment["TABLE_NAME"], boto3.client("dynamodb", endpoint_url=endpoint))
        counter = stack.emulator.count_requests()
        url = f"{stack.api_url}/api/v1/notifications"
        body = {
            "recipient": "user@example.com",
            "message": "Hello from the benchmark!",
            "channels": ["email"],
        }
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(lambda _i: _post(url, body), range(notifications)))
        accepted_at = time.perf_counter()
        records = _wait_terminal(items, notifications)
        finished_at = time.perf_counter()
        calls = {k: v for k, v in counter.snapshot().items() if k not in BENCH_ONLY}
        invocations = {
            "api": stack.gateway.invocations,
            "api_seconds": stack.gateway.invoke_seconds,
            "dispatch": sum(p.batches for p in stack.pollers),
            "dispatch_messages": sum(p.messages for p in stack.pollers),
            "dispatch_seconds": sum(p.invoke_seconds for p in stack.pollers),
        }
        for poller in stack.pollers:  # the baseline has the queue to itself
            poller.stop()
        baseline_seconds = _baseline(
            endpoint, stack.environment["TABLE_NAME"], stack.environment["QUEUE_URL"], notifications, clients
        )
    finally:
        stack.stop()
    latencies = [_latency_seconds(r) for r in records if r["status"]["S"] == "sent"]
    wall = finished_at - started
    item_kb = statistics.median(sum(dynamodb_item_bytes(v, k) for k, v in r.items()) for r in records) / 1024
    return {
        "notifications": notifications,
        "clients": clients,
        "sent": len(latencies),
        "accepted_per_s": round(notifications / (accepted_at - started), 1),
        "delivered_per_s": round(notifications / wall, 1),
        "p50_ms": _ms(percentile(latencies, 50)),
        "p95_ms": _ms(percentile(latencies, 95)),
        "p99_ms": _ms(percentile(latencies, 99)),
        "wall_s": round(wall, 2),
        "baseline_wall_s": round(baseline_seconds, 2),
        "ratio": round(wall / baseline_seconds, 2),
        "latencies_ms": [_ms(x) for x in latencies],
        "_calls": calls,
        "_invocations": invocations,
        "_item_kb": item_kb,
    }


def _wait_terminal(items: _Items, expected: int, timeout: float = 600) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        records = items.scan()
        if len(records) >= expected and all(r["status"]["S"] in TERMINAL for r in records):
            return records
        if time.monotonic() > deadline:
            raise TimeoutError("notifications did not finish in time")
        time.sleep(0.25)


def _latency_seconds(record: dict[str, Any]) -> float:
    created = datetime.fromisoformat(record["created_at"]["S"].replace("Z", "+00:00"))
    sent = [a["M"] for a in record["attempts"]["L"] if a["M"]["outcome"]["S"] == "sent"]
    finished = datetime.fromisoformat(sent[-1]["finished_at"]["S"].replace("Z", "+00:00"))
    return (finished - created).total_seconds()


def _baseline(endpoint: str, table: str, queue_url: str, notifications: int, clients: int) -> float:
    """The AWS calls the service makes for one delivered notification, issued directly with boto3 on
    the same emulator: PutItem + SendMessage (accept), ReceiveMessage in batches of 10, a conditional
    UpdateItem to claim (with the first send's intent) and one to complete, DeleteMessageBatch."""
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    remaining = threading.Semaphore(0)
    started = time.perf_counter()

    def accept(_i: int) -> None:
        key = f"NOTIFICATION#baseline-{uuid.uuid4()}"
        dynamodb.put_item(
            TableName=table,
            Item={
                "pk": {"S": key},
                "sk": {"S": "NOTIFICATION"},
                "status": {"S": "pending"},
                "round": {"N": "0"},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"key": key}))

    def consume() -> None:
        while remaining.acquire(timeout=0):
            remaining.release()
            got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            messages = got.get("Messages", [])
            for message in messages:
                key = {"pk": {"S": json.loads(message["Body"])["key"]}, "sk": {"S": "NOTIFICATION"}}
                dynamodb.update_item(
                    TableName=table,
                    Key=key,
                    UpdateExpression="SET #s = :p, #r = :one, sending = if_not_exists(sending, :intent)",
                    ConditionExpression="#s = :pending",
                    ExpressionAttributeNames={"#s": "status", "#r": "round"},
                    ExpressionAttributeValues={
                        ":p": {"S": "processing"},
                        ":one": {"N": "1"},
                        ":pending": {"S": "pending"},
                        ":intent": {"M": {"round": {"N": "1"}, "token": {"S": "t"}}},
                    },
                )
                dynamodb.update_item(
                    TableName=table,
                    Key=key,
                    UpdateExpression="SET #s = :sent",
                    ConditionExpression="#s = :p",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":sent": {"S": "sent"}, ":p": {"S": "processing"}},
                )
                remaining.acquire()
            if messages:
                sqs.delete_message_batch(
                    QueueUrl=queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
                    ],
                )

    for _ in range(notifications):
        remaining.release()
    consumers = [threading.Thread(target=consume) for _ in range(2)]
    for consumer in consumers:
        consumer.start()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(accept, range(notifications)))
    for consumer in consumers:
        consumer.join()
    return time.perf_counter() - started


def requests_and_cost(e2e: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    n = e2e["notifications"]
    calls: dict[str, int] = e2e["_calls"]
    inv = e2e["_invocations"]
    per = {k: round(v / n, 3) for k, v in sorted(calls.items())}
    by_service: Counter[str] = Counter()
    for key, count in calls.items():
        by_service[key.split(":")[0]] += count
    units = max(1, math.ceil(e2e["_item_kb"]))  # write units per write of an item this size
    writes = sum(
        v for k, v in calls.items() if k.startswith("dynamodb:") and k.split(":")[1] in DYNAMODB_WRITES
    )
    reads = sum(
        v for k, v in calls.items() if k.startswith("dynamodb:") and k.split(":")[1] in DYNAMODB_READS
    )
    sqs_requests = by_service["sqs"]
    lambda_invocations = inv["api"] + inv["dispatch"]
    gb_seconds = (inv["api_seconds"] + inv["dispatch_seconds"]) * LAMBDA_MEMORY_GB
    shared = (
        lambda_invocations * PRICES["lambda_request"]
        + gb_seconds * PRICES["lambda_gb_second_x86"]
        + writes * units * PRICES["dynamodb_write_request_unit"]
        + reads * max(1, math.ceil(e2e["_item_kb"] / 4)) * PRICES["dynamodb_read_request_unit"]
        + sqs_requests * PRICES["sqs_request"]
    )
    api_requests = inv["api"]
    per_million = 1e6 / n
    lambda_cost = lambda_invocations * PRICES["lambda_request"]
    duration_cost = gb_seconds * PRICES["lambda_gb_second_x86"]
    sqs_cost = sqs_requests * PRICES["sqs_request"]
    breakdown = {
        "lambda_requests": lambda_cost,
        "lambda_duration": duration_cost,
        "dynamodb": shared - lambda_cost - duration_cost - sqs_cost,
        "sqs": sqs_cost,
        "http_api": api_requests * PRICES["http_api_request"],
        "rest_api": api_requests * PRICES["rest_api_request"],
    }
    own = sum(v for k, v in calls.items() if k.split(":")[0] not in PLATFORM_SERVICES)
    aws = {
        "total": round(own / n, 2),
        "platform_not_counted": {
            k: round(v / n, 3) for k, v in sorted(calls.items()) if k.split(":")[0] in PLATFORM_SERVICES
        },
        "by_service": {k: round(v / n, 2) for k, v in sorted(by_service.items())},
        "by_operation": per,
        "lambda_invocations": {
            "api": round(inv["api"] / n, 2),
            "dispatch": round(inv["dispatch"] / n, 3),
            "dispatch_mean_batch_size": round(inv["dispatch_messages"] / max(1, inv["dispatch"]), 2),
        },
    }
    million = 1e6 / n
    cost = {
        "http_api": round((shared + api_requests * PRICES["http_api_request"]) * million, 2),
        "rest_api": round((shared + api_requests * PRICES["rest_api_request"]) * million, 2),
        "breakdown": {k: round(v * per_million, 2) for k, v in breakdown.items()},
        "prices_date": PRICES_DATE,
        "prices_source": PRICES_SOURCE,
        "assumptions": (
            f"Lambda {int(LAMBDA_MEMORY_GB * 1024)} MB x86 billed for the durations measured locally; "
            f"DynamoDB {units} WRU per write (items ~{e2e['_item_kb']:.1f} KB); excluded: provider fees "
            "(SMTP, Twilio, Telegram), the Redis-compatible cache, CloudWatch Logs, data transfer, free tiers"
        ),
    }
    return aws, cost


# -- the report ---------------------------------------------------------------------------------------
def run(
    notifications: int = 1000,
    clients: int = 8,
    cold_runs: int = 10,
    batch_repetitions: int = 5,
    provider_latency: float = 0.2,
    output: Path = RESULTS,
    progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> dict[str, Any]:
    progress("cold start ...")
    cold = cold_start(cold_runs)
    progress("batch concurrency ...")
    batched = batch(provider_latency, batch_repetitions)
    progress(f"end to end with {notifications} notifications ...")
    e2e = end_to_end(notifications, clients)
    aws, cost = requests_and_cost(e2e)
    report = {
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "cold_start": cold,
        "batch": batched,
        "e2e": {k: v for k, v in e2e.items() if not k.startswith("_") and k != "latencies_ms"},
        "aws_requests_per_notification": aws["total"],
        "aws_requests": aws,
        "cost_per_million_usd": cost,
    }
    output.mkdir(parents=True, exist_ok=True)
    (output / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    (output / "latest.md").write_text(markdown(report))
    plot(e2e["latencies_ms"], output / "latency.png", report)
    return report


def markdown(r: dict[str, Any]) -> str:
    c, b, e, cost = r["cold_start"], r["batch"], r["e2e"], r["cost_per_million_usd"]
    rows = [
        (
            "Cold start, ApiFunction import",
            f"{c['api_ms']} ms",
            f"{c['api_ratio']} x `import boto3` ({c['boto3_ms']} ms)",
        ),
        (
            "Cold start, DispatchFunction import",
            f"{c['dispatch_ms']} ms",
            f"{c['dispatch_ratio']} x `import boto3`",
        ),
        (
            f"Batch of 10, provider {b['provider_latency_ms']} ms",
            f"{b['ten_records_ms']} ms",
            f"{b['ratio']} x one record ({b['one_record_ms']} ms)",
        ),
        (
            f"End to end, {e['notifications']} notifications",
            f"{e['wall_s']} s",
            f"{e['ratio']} x the raw AWS calls ({e['baseline_wall_s']} s)",
        ),
        ("Accepted / delivered per second", f"{e['accepted_per_s']} / {e['delivered_per_s']}", ""),
        ("POST → sent p50 / p95 / p99", f"{e['p50_ms']} / {e['p95_ms']} / {e['p99_ms']} ms", ""),
        (
            "AWS requests per notification",
            str(r["aws_requests_per_notification"]),
            ", ".join(
                f"{k} {v}" + (" (the platform's log shipping, not counted)" if k in PLATFORM_SERVICES else "")
                for k, v in r["aws_requests"]["by_service"].items()
            ),
        ),
        (
            "Cost per million (HTTP API / REST API)",
            f"${cost['http_api']} / ${cost['rest_api']}",
            f"prices {cost['prices_date']}; provider fees excluded; "
            + ", ".join(f"{k} ${v}" for k, v in cost["breakdown"].items()),
        ),
    ]
    lines = [
        f"# Benchmark ({r['machine']['date']}, {r['machine']['cores']} cores, "
        f"Python {r['machine']['python']})",
        "",
        "| figure | measured | ratio / detail |",
        "|---|---|---|",
    ]
    lines += [f"| {a} | {m} | {d} |" for a, m, d in rows]
    return "\n".join(lines) + "\n"


def plot(latencies_ms: list[float], path: Path, report: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.5))
    axis.hist(latencies_ms, bins=50, color="#4C72B0")
    for name in ("p50_ms", "p99_ms"):
        value = report["e2e"][name]
        axis.axvline(
            value,
            color="#C44E52" if name == "p99_ms" else "#55A868",
            linestyle="--",
            label=f"{name[:3]} {value} ms",
        )
    axis.set_xlabel("POST → sent (ms)")
    axis.set_ylabel("notifications")
    axis.set_title(f"Local stack, {report['e2e']['notifications']} notifications")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
