"""Between Python values and DynamoDB attribute values, and from botocore errors to ours."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from notification_service.adapters import aws
from notification_service.errors import DependencyUnavailable

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def av(value: Any) -> Any:
    return _serializer.serialize(decimals(value))


def decimals(value: Any) -> Any:
    """DynamoDB numbers are Decimals; JSON metadata may carry floats."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, list):
        return [decimals(v) for v in value]
    if isinstance(value, dict):
        return {k: decimals(v) for k, v in value.items()}
    return value


error_code = aws.error_code


def unavailable(exc: Exception) -> DependencyUnavailable:
    return aws.unavailable(exc, "dynamodb")


def plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: undecimal(_deserializer.deserialize(v)) for k, v in item.items()}


def undecimal(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [undecimal(v) for v in value]
    if isinstance(value, dict):
        return {k: undecimal(v) for k, v in value.items()}
    return value
