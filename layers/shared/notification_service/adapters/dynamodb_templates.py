"""TemplateStore on the notifications table: one item per template (pk TEMPLATE#<name>), listed by
name through the same ListIndex (list_pk TEMPLATES), the version counted up by every PUT."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from notification_service.adapters.dynamodb_repository import LIST_INDEX
from notification_service.adapters.dynamodb_values import av as _av
from notification_service.adapters.dynamodb_values import error_code as _code
from notification_service.adapters.dynamodb_values import plain as _plain
from notification_service.adapters.dynamodb_values import unavailable as _unavailable
from notification_service.clock import isoformat, parse_iso
from notification_service.domain.model import Channel
from notification_service.domain.template import Template, TemplateNotFound, TemplatePart

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TEMPLATES_PARTITION = "TEMPLATES"


def _key(name: str) -> dict[str, Any]:
    return {"pk": {"S": f"TEMPLATE#{name}"}, "sk": {"S": "TEMPLATE"}}


def _part_map(part: TemplatePart) -> dict[str, str]:
    return {
        k: v
        for k, v in {"text": part.text, "subject": part.subject, "html": part.html}.items()
        if v is not None
    }


def _template(item: dict[str, Any]) -> Template:
    return Template(
        name=item["name"],
        parts={
            Channel(c): TemplatePart(p["text"], p.get("subject"), p.get("html"))
            for c, p in item["parts"].items()
        },
        version=int(item["version"]),
        created_at=parse_iso(item["created_at"]),
        updated_at=parse_iso(item["updated_at"]),
    )


class DynamoDbTemplateStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def put(self, name: str, parts: dict[Channel, TemplatePart], now: datetime) -> Template:
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key=_key(name),
                UpdateExpression=(
                    "SET #name = :name, parts = :parts, updated_at = :now, "
                    "created_at = if_not_exists(created_at, :now), #type = :type, "
                    "list_pk = :list_pk, list_sk = :name ADD version :one"
                ),
                ExpressionAttributeNames={"#name": "name", "#type": "type"},
                ExpressionAttributeValues={
                    ":name": _av(name),
                    ":parts": _av({c.value: _part_map(p) for c, p in parts.items()}),
                    ":now": _av(isoformat(now)),
                    ":type": _av("template"),
                    ":list_pk": _av(TEMPLATES_PARTITION),
                    ":one": _av(1),
                },
                ReturnValues="ALL_NEW",
            )
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc
        return _template(_plain(answer["Attributes"]))

    def get(self, name: str) -> Template:
        try:
            item = self._client.get_item(TableName=self._table, Key=_key(name), ConsistentRead=True).get(
                "Item"
            )
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc
        if not item:
            raise TemplateNotFound(name)
        return _template(_plain(item))

    def delete(self, name: str) -> None:
        try:
            self._client.delete_item(
                TableName=self._table, Key=_key(name), ConditionExpression="attribute_exists(pk)"
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise TemplateNotFound(name) from None
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc

    def list(self) -> list[Template]:
        found: list[Template] = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": LIST_INDEX,
            "KeyConditionExpression": "list_pk = :pk",
            "ExpressionAttributeValues": {":pk": _av(TEMPLATES_PARTITION)},
        }
        while True:
            try:
                answer = self._client.query(**request)
            except (ClientError, BotoCoreError) as exc:
                raise _unavailable(exc) from exc
            found += [_template(_plain(item)) for item in answer.get("Items", [])]
            if "LastEvaluatedKey" not in answer:
                return found
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
