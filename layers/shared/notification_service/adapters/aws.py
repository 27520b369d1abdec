"""boto3 clients built once per process, pointed at AWS or at an emulator (AWS_ENDPOINT_URL)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from notification_service.errors import DependencyUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_sqs import SQSClient

# Bounded retries with jitter inside each call (botocore's standard mode), short timeouts: a Lambda
# that waits a minute on a dead dependency helps nobody.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=5,
    max_pool_connections=32,
)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def unavailable(exc: Exception, service: str) -> DependencyUnavailable:
    """A failed AWS call (ClientError or BotoCoreError) as that service being unavailable."""
    detail = (error_code(exc) or "error") if isinstance(exc, ClientError) else type(exc).__name__
    return DependencyUnavailable(service, detail)


def _client(service: str, endpoint_url: str | None) -> Any:
    session = boto3.session.Session()
    return session.client(service, endpoint_url=endpoint_url or None, config=CLIENT_CONFIG)  # type: ignore[call-overload]


def dynamodb_client(endpoint_url: str | None = None) -> DynamoDBClient:
    client: DynamoDBClient = _client("dynamodb", endpoint_url)
    return client


def sqs_client(endpoint_url: str | None = None) -> SQSClient:
    client: SQSClient = _client("sqs", endpoint_url)
    return client


def logs_client(endpoint_url: str | None = None) -> CloudWatchLogsClient:
    client: CloudWatchLogsClient = _client("logs", endpoint_url)
    return client
