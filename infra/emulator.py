"""The AWS API emulator: moto's server embedded in this process, unless AWS_ENDPOINT_URL names one
already running (another moto server, or LocalStack)."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlparse

DEFAULT_REGION = "us-east-1"


@dataclass
class Emulator:
    endpoint_url: str
    embedded: bool
    _server: object | None = None

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
