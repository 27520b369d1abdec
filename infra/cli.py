"""`notifyctl`: the project's command line. `local` runs the whole stack; `invoke` runs one handler
on an event (the no-Docker twin of `sam local invoke`); `dlq` lists and redrives the dead-letter
queue; `emulator` runs just the AWS API emulator."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from dotenv import load_dotenv
from notification_service.domain.api_keys import InvalidApiKeyEntry, new_key, parse_entries

from infra import client_commands, dead_letters, logs_command
from infra.emulator import aws_client, emulator_url, start_emulator
from infra.local_stack import LocalStack, LocalStackConfig
from infra.sinks import DEFAULT_INBOX, read_inbox


def main(argv: list[str] | None = None) -> int:
    # .env first: its API_HOST, API_PORT and EMULATOR_PORT are the defaults of the options below
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--env-file", default=".env")
    known, _ = early.parse_known_args(argv)
    if Path(known.env_file).is_file():
        load_dotenv(known.env_file, override=False)
    parser = argparse.ArgumentParser(prog="notifyctl", description=__doc__)
    parser.add_argument("--env-file", default=".env", help="read variables from this file (default .env)")
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser(
        "local", help="run the whole service locally (API, dispatch, emulator, Redis)"
    )
    local.add_argument("--host", default=os.environ.get("API_HOST", "127.0.0.1"))
    local.add_argument("--port", type=int, default=int(os.environ.get("API_PORT", "8000")))
    local.add_argument(
        "--emulator-port",
        type=int,
        default=int(os.environ.get("EMULATOR_PORT", "4566")),
        help="port of the embedded moto server (0: any free port)",
    )
    local.add_argument("--stack-name", default="notification-service-local")
    local.add_argument("--api-instances", type=int, default=4, help="concurrent ApiFunction instances")
    local.add_argument("--pollers", type=int, default=2, help="concurrent DispatchFunction pollers")
    local.add_argument(
        "--inbox", type=Path, default=DEFAULT_INBOX, help="where the sinks record what they got"
    )
    local.add_argument(
        "--sinks",
        action="store_true",
        help="start local SMTP, Twilio and Telegram peers and send through the real providers",
    )

    local.add_argument(
        "--schedule-every",
        type=float,
        default=None,
        metavar="SECONDS",
        help="run scheduled functions (the sweeper) this often instead of their template rate",
    )

    keys = commands.add_parser("keys", help="make an API key: the key for the client, the entry for API_KEYS")
    keys.add_argument("action", choices=["new"])
    keys.add_argument("name", help="who the key is for (1-64 of A-Z a-z 0-9 _ . -): it owns what it sends")
    sinks = commands.add_parser("sinks", help="list what the local peers (notifyctl local --sinks) received")
    sinks.add_argument("--channel", choices=["email", "sms", "telegram"])
    sinks.add_argument("--json", action="store_true", help="one JSON object per line")
    sinks.add_argument("--inbox", type=Path, default=DEFAULT_INBOX)

    invoke = commands.add_parser("invoke", help="run one function's handler on an event, in this process")
    invoke.add_argument("function", help="logical id in template.yaml, e.g. ApiFunction or DispatchFunction")
    invoke.add_argument("--event", "-e", required=True, help="JSON event file (see events/), or - for stdin")
    invoke.add_argument("--stack-name", default="notification-service-local")

    bench = commands.add_parser("bench", help="measure cold start, batch concurrency, end to end and cost")
    bench.add_argument("--notifications", type=int, default=1000)
    bench.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    bench.add_argument("--cold-runs", type=int, default=10)
    bench.add_argument("--batch-repetitions", type=int, default=5)
    bench.add_argument("--output", type=Path, default=None, help="default bench/results")

    _dlq_command(commands)
    client_commands.add(commands)
    logs_command.add(commands)

    emulator = commands.add_parser("emulator", help="run only the AWS API emulator (moto), in the foreground")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=4566)

    args = parser.parse_args(argv)
    if args.command == "local":
        return run_local(
            LocalStackConfig(
                host=args.host,
                port=args.port,
                emulator_port=args.emulator_port,
                stack_name=args.stack_name,
                api_instances=args.api_instances,
                dispatch_pollers=args.pollers,
                sinks=args.sinks,
                inbox=args.inbox,
                schedule_period_seconds=args.schedule_every,
            )
        )
    if args.command == "invoke":
        return run_invoke(args.function, args.event, args.stack_name)
    if args.command == "bench":
        return run_bench(args)
    if args.command == "keys":
        return run_keys(args.name)
    if args.command == "sinks":
        return list_sinks(args.inbox, args.channel, as_json=args.json)
    if args.command == "dlq":
        return run_dlq(args)
    if args.command in client_commands.COMMANDS:
        return client_commands.run(args)
    if args.command == "logs":
        return logs_command.run(args)
    return run_emulator(args.host, args.port)


def _dlq_command(commands: Any) -> None:
    dlq = commands.add_parser("dlq", help="list or redrive the delivery dead-letter queue")
    dlq.add_argument("action", choices=["list", "redrive"])
    dlq.add_argument("message_ids", nargs="*", help="redrive only these (default: every message)")
    dlq.add_argument("--stack-name", default="notification-service-local")
    dlq.add_argument(
        "--endpoint-url",
        default=emulator_url(),
        help="the emulator the local stack uses (default AWS_ENDPOINT_URL, else localhost:EMULATOR_PORT)",
    )
    dlq.add_argument("--aws", action="store_true", help="a deployed stack on AWS (ignores --endpoint-url)")
    dlq.add_argument("--json", action="store_true", help="one JSON object per line")


def _wait_for_signal() -> None:
    stop = threading.Event()

    def _handle(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _handle)
    signal.signal(signal.SIGTERM, _handle)
    stop.wait()


def _auth_line(api_keys: str) -> str:
    names = [entry.name for entry in parse_entries(api_keys)]
    if names:
        return f"  auth       X-API-Key required; keys: {', '.join(names)}"
    return (
        "  auth       *** OFF *** API_KEYS is unset: ANY caller can send, read and cancel notifications.\n"
        "             Turn it on: notifyctl keys new NAME, then API_KEYS=<entry> in .env"
    )


def run_keys(name: str) -> int:
    try:
        key, entry = new_key(name)
    except InvalidApiKeyEntry as exc:
        print(f"notifyctl keys: {exc}", file=sys.stderr)
        return 2
    print(f"key    {key}")
    print("       the client sends it as X-API-Key (notifyctl reads NOTIFYCTL_API_KEY); shown once, not kept")
    print(f"entry  {entry}")
    print("       append it to API_KEYS (comma-separated name:sha256 entries) in .env")
    return 0


def run_local(config: LocalStackConfig) -> int:
    try:
        stack = LocalStack(config).start()
    except Exception as exc:
        print(f"notifyctl local: {exc}", file=sys.stderr)
        return 1
    assert stack.emulator is not None and stack.redis is not None and stack.stack is not None
    lines = [
        "Notification service running locally (Ctrl-C stops it)",
        f"  API        {stack.api_url}/api/v1/notifications",
        f"  docs       {stack.api_url}/docs   (OpenAPI: {stack.api_url}/openapi.json)",
        f"  admin      {stack.api_url}/admin",
        f"  emulator   {stack.emulator.endpoint_url}   "
        f"({'embedded moto' if stack.emulator.embedded else 'external'}; stack {stack.stack.name})",
        f"  table      {stack.environment.get('TABLE_NAME')}",
        f"  queue      {stack.environment.get('QUEUE_URL')}",
        f"  redis      {stack.redis.url}{' (started here)' if stack.redis.process else ''}",
    ]
    if stack.sinks is not None:
        assert stack.sinks.smtp and stack.sinks.twilio and stack.sinks.telegram
        lines.append(
            f"  sinks      smtp 127.0.0.1:{stack.sinks.smtp.port} · twilio {stack.sinks.twilio.base_url}"
            f" · telegram {stack.sinks.telegram.base_url}   (`notifyctl sinks` lists what they received)"
        )
    lines.append(_auth_line(stack.environment.get("API_KEYS", "")))
    lines.append(
        f"  webhooks   signed with WEBHOOK_SECRET={stack.environment.get('WEBHOOK_SECRET', '')}"
        f"   (private callback URLs allowed: {stack.environment.get('ALLOW_PRIVATE_WEBHOOKS')})"
    )
    failing = stack.environment.get("MOCK_FAIL_CHANNELS")
    if failing:
        lines.append(f"  mock channels failing on purpose: {failing}")
    print("\n".join(lines), flush=True)
    try:
        _wait_for_signal()
    finally:
        print("stopping...", flush=True)
        stack.stop()
    return 0


def run_invoke(function: str, event_path: str, stack_name: str) -> int:
    text = sys.stdin.read() if event_path == "-" else Path(event_path).read_text()
    event = json.loads(text)
    stack = LocalStack(LocalStackConfig(serve=False, stack_name=stack_name, emulator_port=0))
    try:
        stack.start()
        with contextlib.redirect_stdout(
            sys.stderr
        ):  # like `sam local invoke`: logs on stderr, result on stdout
            result = stack.instance(function).invoke(event)
    except Exception as exc:
        print(json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}), file=sys.stderr)
        return 1
    finally:
        stack.stop()
    print(json.dumps(result, indent=2, default=str))
    return 0


def list_sinks(inbox: Path, channel: str | None, *, as_json: bool) -> int:
    items = [i for i in read_inbox(inbox) if channel is None or i["channel"] == channel]
    for item in items:
        if as_json:
            print(json.dumps(item))
            continue
        to = ", ".join(item["to"]) if isinstance(item["to"], list) else item["to"]
        title = f" subject={item['subject']!r}" if item.get("subject") else ""
        print(f"{item['received_at']}  {item['channel']:<8} to={to}{title}  {item['body'][:60]!r}")
    if not items and not as_json:
        print(f"nothing received yet ({inbox})")
    return 0


def run_dlq(args: argparse.Namespace) -> int:
    endpoint = None if args.aws else args.endpoint_url
    try:
        queues = dead_letters.stack_queues(args.stack_name, endpoint)
        sqs = aws_client("sqs", endpoint)
        if args.action == "list":
            letters = dead_letters.list_dead_letters(sqs, queues.dead_letter_url)
        else:
            letters = dead_letters.redrive(sqs, queues, set(args.message_ids) or None)
    except (BotoCoreError, ClientError, KeyError, ValueError) as exc:
        print(f"notifyctl dlq: {exc}", file=sys.stderr)
        return 1
    for letter in letters:
        print(json.dumps(letter.as_dict()) if args.json else letter.summary())
    if not args.json:
        verb = "on the dead-letter queue" if args.action == "list" else "sent back to the delivery queue"
        print(f"{len(letters)} message(s) {verb}")
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from infra import bench  # matplotlib and friends only when benchmarking

    report = bench.run(
        notifications=args.notifications,
        clients=args.clients,
        cold_runs=args.cold_runs,
        batch_repetitions=args.batch_repetitions,
        output=args.output or bench.RESULTS,
    )
    print(bench.markdown(report))
    return 0


def run_emulator(host: str, port: int) -> int:
    emulator = start_emulator(None, host=host, port=port)
    print(
        f"moto emulator on {emulator.endpoint_url} (Ctrl-C stops it); point AWS_ENDPOINT_URL at it",
        flush=True,
    )
    try:
        _wait_for_signal()
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
