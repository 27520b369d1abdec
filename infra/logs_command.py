"""`notifyctl logs` on the command line: which log groups, which filter, readable or JSON, --follow."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from notification_service.adapters.log_reader import (
    LogEvent,
    LogFilter,
    LogReader,
    groups_for,
    now_ms,
    parse_since,
)

from infra import sam_template
from infra.emulator import aws_client, emulator_url
from infra.sam_template import TemplateError


def add(commands: Any) -> None:
    logs = commands.add_parser("logs", help="read and tail the functions' CloudWatch logs (like `sam logs`)")
    logs.add_argument("functions", nargs="*", help="logical ids (default: every function in template.yaml)")
    logs.add_argument("--correlation-id")
    logs.add_argument("--notification-id")
    logs.add_argument("--level", choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], type=str.upper)
    logs.add_argument("--since", default="1h", help="how far back: 30s, 10m, 2h, 1d (default 1h)")
    logs.add_argument(
        "--filter", help='a raw CloudWatch filter pattern, e.g. ERROR or { $.outcome = "failed" }'
    )
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new lines (Ctrl-C stops)")
    logs.add_argument("--json", action="store_true", help="the raw JSON lines")
    logs.add_argument("--stack-name", default="notification-service-local")
    logs.add_argument(
        "--endpoint-url",
        default=emulator_url(),
        help="the emulator of the local stack (default AWS_ENDPOINT_URL, else localhost:EMULATOR_PORT)",
    )
    logs.add_argument(
        "--aws", action="store_true", help="a deployed stack: its functions' log groups from CloudFormation"
    )


def run(args: argparse.Namespace) -> int:
    endpoint = None if args.aws else args.endpoint_url
    try:
        groups = _groups(args, endpoint)
        reader = LogReader(
            aws_client("logs", endpoint),
            groups,
            LogFilter(args.correlation_id, args.notification_id, args.level, args.filter),
        )
        start = now_ms() - parse_since(args.since) * 1000
        if args.follow:
            stop = threading.Event()
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, lambda *_: stop.set())
            reader.follow(start, lambda event: _print(event, args.json), stop)
        else:
            for event in reader.read(start):
                _print(event, args.json)
    except (BotoCoreError, ClientError, ValueError, KeyError, TemplateError) as exc:
        print(f"notifyctl logs: {exc}", file=sys.stderr)
        return 1
    return 0


def _print(event: LogEvent, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"log_group": event.group, "timestamp": event.timestamp, "message": event.message}))
    else:
        print(event.readable(), flush=True)


def _groups(args: argparse.Namespace, endpoint: str | None) -> list[str]:
    if args.aws:  # deployed: the functions' physical names from the stack
        cloudformation = boto3.client("cloudformation")
        resources = cloudformation.describe_stack_resources(StackName=args.stack_name)["StackResources"]
        names = {
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in resources
            if r["ResourceType"] == "AWS::Lambda::Function"
        }
        chosen = args.functions or sorted(names)
        unknown = [f for f in chosen if f not in names]
        if unknown:
            raise ValueError(
                f"no function {', '.join(unknown)} in stack {args.stack_name} (has {', '.join(names)})"
            )
        return groups_for(names[f] for f in chosen)
    template = sam_template.load()  # the local stack names its functions by their logical ids
    chosen = args.functions or sorted(template.functions)
    for name in chosen:
        template.function(name)  # raises naming the known ones
    return groups_for(chosen)
