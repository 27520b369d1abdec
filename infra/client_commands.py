"""The `notifyctl` commands that use the service's API: send, list, cancel, retry, templates."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from notification_service.domain.model import Channel, Routing, Status

from infra import api_client

COMMANDS = frozenset({"send", "list", "status", "cancel", "retry", "templates"})


def add(commands: Any) -> None:
    send = commands.add_parser("send", help="send a notification (or --batch FILE: up to 100)")
    send.add_argument("--to", help="recipient: email, E.164 phone or Telegram chat id")
    what = send.add_mutually_exclusive_group()
    what.add_argument("--message")
    what.add_argument("--template", help="a stored template's name (with --var name=value ...)")
    send.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help="a template variable")
    send.add_argument("--channels", help="comma-separated fallback order, e.g. sms,email")
    send.add_argument("--subject")
    send.add_argument("--send-at", help="ISO 8601 with an offset; at most 30 days ahead")
    send.add_argument("--routing", choices=[r.value for r in Routing])
    send.add_argument("--idempotency-key")
    send.add_argument(
        "--batch", type=Path, help='a JSON file: a list of requests, or {"notifications": [...]}'
    )

    listing = commands.add_parser("list", help="list notifications, newest first (GET /api/v1/notifications)")
    listing.add_argument("--status", choices=[s.value for s in Status])
    listing.add_argument("--channel", choices=[c.value for c in Channel])
    listing.add_argument("--limit", type=int, default=50)
    status = commands.add_parser("status", help="a notification's attempts as a timeline")
    status.add_argument("notification_id")
    chosen = [send, listing, status]
    for action in ("cancel", "retry"):
        one = commands.add_parser(action, help=f"{action} a notification (POST .../{{id}}/{action})")
        one.add_argument("notification_id")
        chosen.append(one)

    templates = commands.add_parser("templates", help="list, show, put or delete templates")
    templates.add_argument("action", choices=["list", "show", "put", "delete"])
    templates.add_argument("name", nargs="?")
    templates.add_argument(
        "--file", type=Path, help='put: JSON like {"email": {"subject", "text"}, "sms": {"text"}}'
    )
    chosen.append(templates)

    api_url = os.environ.get("NOTIFYCTL_API_URL", api_client.DEFAULT_API_URL)
    for sub in chosen:
        sub.add_argument("--api-url", default=api_url, help=f"default NOTIFYCTL_API_URL or {api_url}")
        sub.add_argument("--json", action="store_true", help="the API's JSON")
        sub.add_argument("--api-key", help=f"sent as X-API-Key (default {api_client.API_KEY_VARIABLE})")


def run(args: argparse.Namespace) -> int:
    saved = os.environ.get(api_client.API_KEY_VARIABLE)
    if args.api_key:
        os.environ[api_client.API_KEY_VARIABLE] = args.api_key
    try:
        return _run(args)
    finally:
        if saved is None:
            os.environ.pop(api_client.API_KEY_VARIABLE, None)
        else:
            os.environ[api_client.API_KEY_VARIABLE] = saved


def _run(args: argparse.Namespace) -> int:
    try:
        shown = _call(args)
    except api_client.ApiError as exc:
        print(f"notifyctl {args.command}: {exc}", file=sys.stderr)
        for detail in exc.body.get("details", []):
            print(f"  {detail.get('field')}: {detail.get('reason')}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"notifyctl {args.command}: {exc}", file=sys.stderr)
        return 1
    for item in shown:
        if args.json:
            print(json.dumps(item))
        elif args.command == "status":
            print("\n".join(timeline(item)))
        else:
            print(_line(item))
    return 0


def _call(args: argparse.Namespace) -> list[dict[str, Any]]:
    url = args.api_url
    match args.command:
        case "list":
            return api_client.list_all(url, args.status, args.channel, args.limit)
        case "status":
            return [api_client.call(url, "GET", f"/api/v1/notifications/{args.notification_id}")]
        case "cancel" | "retry":
            return [
                api_client.call(url, "POST", f"/api/v1/notifications/{args.notification_id}/{args.command}")
            ]
        case "send":
            return _send(args)
        case _:
            return _templates(args)


def _send(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.batch is not None:
        loaded = json.loads(args.batch.read_text())
        body = loaded if isinstance(loaded, dict) else {"notifications": loaded}
        answer = api_client.call(args.api_url, "POST", "/api/v1/notifications/batch", body=body)
        return list(answer["items"])
    if not args.to or not (args.message or args.template):
        raise ValueError("give --to and --message (or --template with --var), or --batch FILE")
    request: dict[str, Any] = {"recipient": args.to}
    if args.message:
        request["message"] = args.message
    else:
        request["template"] = args.template
        request["variables"] = dict(_variable(v) for v in args.var)
    optional = {"subject": args.subject, "send_at": args.send_at, "routing": args.routing}
    request.update({k: v for k, v in optional.items() if v})
    if args.channels:
        request["channels"] = [c.strip() for c in args.channels.split(",") if c.strip()]
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    return [api_client.call(args.api_url, "POST", "/api/v1/notifications", body=request, headers=headers)]


def _variable(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ValueError(f"--var wants NAME=VALUE, not {text!r}")
    return name, value


def _templates(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.action == "list":
        return list(api_client.call(args.api_url, "GET", "/api/v1/templates")["items"])
    if not args.name:
        raise ValueError(f"templates {args.action} needs a NAME")
    path = f"/api/v1/templates/{args.name}"
    if args.action == "show":
        return [api_client.call(args.api_url, "GET", path)]
    if args.action == "delete":
        api_client.call(args.api_url, "DELETE", path)
        return []
    if args.file is None:
        raise ValueError("templates put needs --file")
    return [api_client.call(args.api_url, "PUT", path, body=json.loads(args.file.read_text()))]


def _line(item: dict[str, Any]) -> str:
    if "version" in item and "name" in item:
        parts = ", ".join(c for c in ("email", "sms", "telegram") if item.get(c))
        return f"{item['name']}  v{item['version']}  parts: {parts}  updated {item.get('updated_at')}"
    if "error" in item and item.get("error"):
        return f"#{item['index']}  rejected: {item['error']['message']}"
    if "channels" not in item:  # an accepted notification, or a batch item
        where = f"#{item['index']}  " if "index" in item else ""
        return f"{where}{item['id']}  {item['status']}"
    return api_client.line(item)


def timeline(notification: dict[str, Any]) -> list[str]:
    """`notifyctl status ID`: the notification and its attempts, one line each."""
    head = f"{notification['id']}  {notification['status']}"
    if notification.get("status_reason"):
        head += f" ({notification['status_reason']})"
    head += f"  correlation {notification['correlation_id']}  created {notification['created_at']}"
    lines = [head]
    for attempt in notification["attempts"]:
        started = datetime.fromisoformat(attempt["started_at"])
        took = int((datetime.fromisoformat(attempt["finished_at"]) - started).total_seconds() * 1000)
        detail = attempt.get("error") or attempt.get("provider_message_id") or ""
        what = f"{attempt['channel']:<8} {attempt['outcome']:<9}"
        lines.append(f"  round {attempt['round']}  {what} {took:>6} ms  {detail}")
    if notification.get("next_attempt_at"):
        lines.append(f"  next round at {notification['next_attempt_at']}")
    for hook in notification.get("webhooks", []):
        answer = hook.get("error") or f"HTTP {hook.get('status_code')}"
        state = "delivered" if hook["delivered"] else ("given up" if hook["final"] else "will retry")
        lines.append(
            f"  webhook {hook['status']:<14} attempt {hook['attempt']}  {state:<10} "
            f"{int(hook['duration_ms']):>6} ms  {answer}"
        )
    return lines
