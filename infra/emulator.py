"""The AWS API emulator: moto's server embedded in this process, unless AWS_ENDPOINT_URL names one
already running (another moto server, or LocalStack)."""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

DEFAULT_REGION = "us-east-1"
TEST_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # any will do


class RequestCounter:
    """WSGI middleware counting the AWS requests the emulator serves, by service and operation
    (from the SigV4 credential scope and X-Amz-Target): every process's calls, in one place."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        key = operation_of(environ.get("HTTP_AUTHORIZATION", ""), environ.get("HTTP_X_AMZ_TARGET", ""))
        with self._lock:
            self.counts[key] += 1
        return self.app(environ, start_response)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()


def operation_of(authorization: str, target: str) -> str:
    scope = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", authorization)
    service = scope.group(1) if scope else "unknown"
    operation = target.rsplit(".", 1)[-1] if target else "other"
    return f"{service}:{operation}"


@dataclass
class Emulator:
    endpoint_url: str
    embedded: bool
    _server: object | None = None

    def count_requests(self) -> RequestCounter:
        """Count what the embedded server serves from now on."""
        if self._server is None:
            raise RuntimeError("only the embedded emulator can count its requests")
        wsgi_server = self._server._server  # type: ignore[attr-defined]  # moto's werkzeug server
        counter = RequestCounter(wsgi_server.app)
        wsgi_server.app = counter
        return counter

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()  # type: ignore[attr-defined]
            self._server = None


def start_emulator(endpoint_url: str | None, host: str = "127.0.0.1", port: int = 0) -> Emulator:
    """Use `endpoint_url` when given (LocalStack's `localstack_client` default if it is "localstack");
    otherwise start moto's ThreadedMotoServer on `port` (0: a free one)."""
    if endpoint_url == "localstack":
        from localstack_client.config import get_service_endpoint

        endpoint_url = str(get_service_endpoint("sqs"))
    if endpoint_url:
        _check_reachable(endpoint_url)
        return Emulator(endpoint_url=endpoint_url.rstrip("/"), embedded=False)
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per AWS call is noise here
    port = port or free_port(host)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    return Emulator(endpoint_url=f"http://{host}:{port}", embedded=True, _server=server)


def configure_aws_environment(endpoint_url: str) -> None:
    """What boto3 in every handler needs to reach the emulator; fake credentials unless real ones exist."""
    os.environ["AWS_ENDPOINT_URL"] = endpoint_url
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = region


def aws_client(service: str, endpoint_url: str | None) -> Any:
    """A boto3 client for a deployed stack (endpoint None) or for the local stack's emulator, which
    needs a region and some credentials even from a shell that has none configured."""
    import boto3

    if endpoint_url is None:
        return boto3.client(service)  # type: ignore[call-overload]
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    credentials = {} if os.environ.get("AWS_ACCESS_KEY_ID") else TEST_CREDENTIALS
    return boto3.client(service, endpoint_url=endpoint_url, region_name=region, **credentials)  # type: ignore[call-overload]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _check_reachable(endpoint_url: str) -> None:
    parsed = urlparse(endpoint_url)
    try:
        with socket.create_connection((parsed.hostname or "localhost", parsed.port or 80), timeout=2):
            pass
    except OSError as exc:
        raise RuntimeError(
            f"AWS_ENDPOINT_URL={endpoint_url} does not answer ({exc.strerror or exc})"
        ) from None


def emulator_url() -> str:
    """The emulator `notifyctl` talks to: AWS_ENDPOINT_URL, else the local stack's on EMULATOR_PORT."""
    return os.environ.get("AWS_ENDPOINT_URL") or f"http://localhost:{os.environ.get('EMULATOR_PORT', '4566')}"
