"""API Gateway (REST, proxy integration) in front of in-process handler instances.

Each real HTTP request becomes an API Gateway proxy event; the handler's answer becomes the HTTP
response. A small pool of handler instances serves requests concurrently, one request per instance
at a time, as Lambda does.
"""

from __future__ import annotations

import base64
import json
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aws_lambda_powertools import Logger

from infra.sam_template import ApiRoute

logger = Logger(service="local-stack")
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's own limit
_TEXT_TYPES = ("application/json", "text/", "application/xml", "application/javascript")


def route_pattern(route: ApiRoute) -> re.Pattern[str]:
    """/{proxy+} matches any rest of the path; /{id} one segment."""
    parts = []
    for segment in route.path.strip("/").split("/"):
        if segment.endswith("+}"):
            parts.append(r"(?:.+)")
        elif segment.startswith("{"):
            parts.append(r"[^/]+")
        else:
            parts.append(re.escape(segment))
    return re.compile("^/" + "/".join(parts) + "$") if parts != [""] else re.compile("^/$")


def build_event(
    method: str,
    raw_path: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    resource: str = "/{proxy+}",
    stage: str = "local",
) -> dict[str, Any]:
    split = urlsplit(raw_path)
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        multi_headers.setdefault(name, []).append(value)
    query = parse_qs(split.query, keep_blank_values=True)
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    is_text = not body or any(content_type.startswith(t) for t in _TEXT_TYPES) or not content_type
    try:
        text_body: str | None = body.decode() if is_text else None
    except UnicodeDecodeError:
        text_body = None
    encoded = text_body is None and bool(body)
    now = time.time()
    return {
        "resource": resource,
        "path": split.path,
        "httpMethod": method,
        "headers": {k: v[-1] for k, v in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": {"proxy": split.path.lstrip("/")} if "{proxy+}" in resource else None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/{stage}{split.path}",
            "stage": stage,
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(now * 1000),
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": source_ip, "userAgent": multi_headers.get("User-Agent", [""])[-1]},
            "accountId": "123456789012",
            "apiId": "local",
        },
        "body": base64.b64encode(body).decode() if encoded else (text_body or None),
        "isBase64Encoded": encoded,
    }


Invoke = Callable[[dict[str, Any]], Any]


class InstancePool:
    """Handler instances of one function; `invoke` borrows an idle one for the duration of a request."""

    def __init__(self, instances: list[Invoke]) -> None:
        self._idle: queue.Queue[Invoke] = queue.Queue()
        for instance in instances:
            self._idle.put(instance)

    def invoke(self, event: dict[str, Any]) -> Any:
        instance = self._idle.get()
        try:
            return instance(event)
        finally:
            self._idle.put(instance)


class LocalApiGateway:
    def __init__(self, routes: list[tuple[ApiRoute, InstancePool]], host: str, port: int) -> None:
        self._routes = [(route_pattern(r), r, pool) for r, pool in routes]
        self.invocations = 0  # function invocations and the time they took
        self.invoke_seconds = 0.0
        self._lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "LocalApiGateway"

            def do_request(self) -> None:
                gateway.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_request  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self.server.serve_forever, name="api-gateway", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def match(self, method: str, path: str) -> tuple[ApiRoute, InstancePool] | None:
        for pattern, route, pool in self._routes:
            if pattern.match(path) and route.method in {"ANY", method}:
                return route, pool
        return None

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        method = request.command
        path = urlsplit(request.path).path
        length = int(request.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            self._reply(
                request,
                413,
                {"Content-Type": ["application/json"]},
                json.dumps({"message": "Request Too Long"}).encode(),
            )
            request.close_connection = True
            return
        body = request.rfile.read(length) if length else b""
        found = self.match(method, path)
        if found is None:
            self._reply(
                request,
                403,
                {"Content-Type": ["application/json"]},
                json.dumps({"message": "Missing Authentication Token"}).encode(),
            )
            return
        route, pool = found
        event = build_event(
            method,
            request.path,
            list(request.headers.items()),
            body,
            request.client_address[0],
            resource=route.path,
        )
        started = time.perf_counter()
        try:
            result = pool.invoke(event)
            status, headers, payload = _to_http(result)
        except Exception:
            logger.exception("handler raised: API Gateway answers 502")
            status, headers, payload = (
                502,
                {"Content-Type": ["application/json"]},
                b'{"message": "Internal server error"}',
            )
        with self._lock:
            self.invocations += 1
            self.invoke_seconds += time.perf_counter() - started
        self._reply(request, status, headers, b"" if method == "HEAD" else payload)

    @staticmethod
    def _reply(
        request: BaseHTTPRequestHandler, status: int, headers: dict[str, list[str]], payload: bytes
    ) -> None:
        request.send_response(
            status, HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        )
        for name, values in headers.items():
            if name.lower() in {"content-length", "connection", "transfer-encoding"}:
                continue
            for value in values:
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)


def _to_http(result: Any) -> tuple[int, dict[str, list[str]], bytes]:
    """A proxy integration answer ({statusCode, headers, multiValueHeaders, body, isBase64Encoded})."""
    if not isinstance(result, dict) or "statusCode" not in result:
        raise ValueError("malformed Lambda proxy response")
    headers: dict[str, list[str]] = {k: [str(v)] for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name] = [str(v) for v in values]
    body = result.get("body") or ""
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    return int(result["statusCode"]), headers, payload
