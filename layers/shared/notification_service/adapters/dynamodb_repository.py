"""NotificationRepository on DynamoDB: one item per notification, attempts inside it, every status
change a conditional write so a stale or duplicate message never moves a record backwards.

Records not finished carry `sweep_status` and `sweep_due` (epoch ms): the keys of the sparse
`SweepIndex`, where the sweeper finds overdue ones without a scan. Finishing removes them.
Every record carries `list_pk` / `list_sk` (`ListIndex`: its owner's notifications, newest first),
and `status_pk` / `owner_sk` (`OwnerStatusIndex`: one status, by owner, newest first); `status_pk` is
kept in step with `status` by every write, the others never change. An owner (the API key that created
a record) sees only its own: a read, cancel or retry of another's is answered as an unknown id."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from notification_service.adapters.dynamodb_values import av as _av
from notification_service.adapters.dynamodb_values import error_code as _code
from notification_service.adapters.dynamodb_values import plain as _plain
from notification_service.adapters.dynamodb_values import unavailable as _unavailable
from notification_service.clock import isoformat, parse_iso
from notification_service.domain.api_keys import ANONYMOUS
from notification_service.domain.lifecycle import CANCELLABLE, RETRYABLE, TransitionRefused
from notification_service.domain.model import (
    Attempt,
    Channel,
    Content,
    FailureKind,
    Notification,
    Outcome,
    Routing,
    SendInProgress,
    Status,
    WebhookAttempt,
)
from notification_service.domain.recipient import Recipient
from notification_service.domain.sweep import SweepCandidate, due_at
from notification_service.errors import InvalidCursor, NotificationNotFound
from notification_service.ports import (
    ClaimRejected,
    LeaseLost,
    ListQuery,
    NotificationAlreadyExists,
    OwedWebhook,
    Page,
    RoundResult,
    StatusCounts,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ITEM_TYPE = "notification"
SWEEP_INDEX = "SweepIndex"
LIST_INDEX = "ListIndex"
STATUS_INDEX = "OwnerStatusIndex"
BATCH_WRITE_ATTEMPTS = 4
STATUS_PARTITION = "ALL"
FILTERED_READ = 100  # items read per Query when a filter drops some
MAX_FILTERED_READ = 1000  # items one filtered page reads at most before it answers with a cursor
MAX_COUNT_READ = 5000  # items one status's count reads at most (beyond: a lower bound)


def _status_pk(status: Status) -> str:
    return f"{STATUS_PARTITION}#{status.value}"


def _list_pk(owner: str) -> str:
    return f"OWNER#{owner}"


def _list_sk(n: Notification) -> str:
    return f"{isoformat(n.created_at)}#{n.id}"


def _owner_sk(n: Notification) -> str:
    return f"{n.owner}#{_list_sk(n)}"  # names never hold "#": one owner's keys share this prefix


def _key(notification_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"NOTIFICATION#{notification_id}"}, "sk": {"S": "NOTIFICATION"}}


class DynamoDbNotificationRepository:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        retention: timedelta,
        sweep_grace: timedelta = timedelta(seconds=60),
    ) -> None:
        self._client = client
        self._table = table_name
        self._retention = retention
        self._sweep_grace = sweep_grace

    # -- writes ---------------------------------------------------------------------------------
    def _new_item(self, notification: Notification) -> dict[str, Any]:
        item = to_item(notification)
        item["expires_at"] = int((notification.created_at + self._retention).timestamp())
        due = due_at(notification, self._sweep_grace)
        if due is not None:
            item.update(sweep_status=notification.status.value, sweep_due=_ms(due))
        item.update(
            list_pk=_list_pk(notification.owner),
            list_sk=_list_sk(notification),
            status_pk=_status_pk(notification.status),
            owner_sk=_owner_sk(notification),
        )
        return {k: _av(v) for k, v in item.items()}

    def add_many(self, notifications: Sequence[Notification]) -> set[str]:
        """BatchWriteItem, 25 at a time, unprocessed items retried a few times: the ids NOT stored.
        Only for fresh random ids (a batch write has no condition)."""
        failed: set[str] = set()
        for start in range(0, len(notifications), 25):
            chunk = notifications[start : start + 25]
            requests: list[Any] = [{"PutRequest": {"Item": self._new_item(n)}} for n in chunk]
            for attempt in range(BATCH_WRITE_ATTEMPTS):
                try:
                    answer = self._client.batch_write_item(RequestItems={self._table: requests})
                except (ClientError, BotoCoreError):
                    break
                requests = list(answer.get("UnprocessedItems", {}).get(self._table, []))
                if not requests:
                    break
                time.sleep(0.05 * 2**attempt)
            failed |= {r["PutRequest"]["Item"]["id"]["S"] for r in requests}
        return failed

    def add(self, notification: Notification) -> None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=self._new_item(notification),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise NotificationAlreadyExists(notification.id) from None
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc

    def claim_round(
        self,
        notification_id: str,
        round_no: int,
        owner: str,
        now: datetime,
        lease_until: datetime,
        intent_token: str | None = None,
    ) -> Notification:
        """With `intent_token`, the claim also writes the intent of the round's first send (one write
        instead of two), unless an earlier run's intent is still there: that one stays, to be resolved."""
        intent = ""
        values: dict[str, Any] = {}
        if intent_token is not None:
            intent = ", sending = if_not_exists(sending, :intent)"
            values[":intent"] = _av({"round": round_no, "started_at": isoformat(now), "token": intent_token})
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key=_key(notification_id),
                UpdateExpression=(
                    "SET #status = :processing, #round = :round, lease_owner = :owner, "
                    "lease_until = :lease_until, updated_at = :now, status_pk = :status_pk, "
                    f"sweep_status = :processing, sweep_due = :lease_until{intent} REMOVE next_attempt_at"
                ),
                ConditionExpression=(
                    "attribute_exists(pk) AND ("
                    "(#status IN (:pending, :retrying) AND #round = :previous) OR "
                    "(#status = :scheduled AND #round = :previous AND send_at_ms <= :now_ms) OR "
                    "(#status = :processing AND #round = :round AND lease_until <= :now_ms))"
                ),
                ExpressionAttributeNames={"#status": "status", "#round": "round"},
                ExpressionAttributeValues={
                    ":processing": _av(Status.PROCESSING.value),
                    ":pending": _av(Status.PENDING.value),
                    ":retrying": _av(Status.RETRYING.value),
                    ":scheduled": _av(Status.SCHEDULED.value),
                    ":round": _av(round_no),
                    ":previous": _av(round_no - 1),
                    ":owner": _av(owner),
                    ":lease_until": _av(_ms(lease_until)),
                    ":now_ms": _av(_ms(now)),
                    ":now": _av(isoformat(now)),
                    ":status_pk": _av(_status_pk(Status.PROCESSING)),
                    **values,
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                old: dict[str, Any] | None = cast(dict[str, Any], exc.response).get("Item")
                if not old:
                    raise NotificationNotFound(notification_id) from None
                raise ClaimRejected(from_item(_plain(old))) from None
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc
        return from_item(_plain(answer["Attributes"]))

    def begin_send(
        self,
        notification_id: str,
        round_no: int,
        owner: str,
        channel: Channel,
        attempts: Sequence[Attempt],
        now: datetime,
    ) -> None:
        sending = {"round": round_no, "channel": channel.value, "started_at": isoformat(now)}
        self._under_lease(
            notification_id,
            round_no,
            owner,
            "SET sending = :sending, attempts = list_append(attempts, :attempts), updated_at = :now",
            {":sending": _av(sending), ":attempts": _av([attempt_to_map(a) for a in attempts])},
            now,
        )

    def release_round(
        self, notification_id: str, round_no: int, owner: str, attempts: Sequence[Attempt], now: datetime
    ) -> None:
        self._under_lease(
            notification_id,
            round_no,
            owner,
            "SET attempts = list_append(attempts, :attempts), lease_until = :now_ms, sweep_due = :now_ms, "
            "updated_at = :now REMOVE sending",
            {":attempts": _av([attempt_to_map(a) for a in attempts]), ":now_ms": _av(_ms(now))},
            now,
        )

    def _under_lease(
        self,
        notification_id: str,
        round_no: int,
        owner: str,
        update: str,
        values: dict[str, Any],
        now: datetime,
    ) -> None:
        written = self._update_if(
            notification_id,
            UpdateExpression=update,
            ConditionExpression="#status = :processing AND #round = :round AND lease_owner = :owner",
            ExpressionAttributeNames={"#status": "status", "#round": "round"},
            ExpressionAttributeValues={
                **values,
                ":now": _av(isoformat(now)),
                ":processing": _av(Status.PROCESSING.value),
                ":round": _av(round_no),
                ":owner": _av(owner),
            },
        )
        if not written:
            raise LeaseLost(f"{notification_id} round {round_no}: lease no longer held by {owner}")

    def complete_round(
        self, notification_id: str, round_no: int, owner: str, result: RoundResult, now: datetime
    ) -> Notification:
        names = {"#status": "status", "#round": "round"}
        values: dict[str, Any] = {
            ":status": _av(result.status.value),
            ":attempts": _av([attempt_to_map(a) for a in result.attempts]),
            ":now": _av(isoformat(now)),
            ":processing": _av(Status.PROCESSING.value),
            ":round": _av(round_no),
            ":owner": _av(owner),
            ":zero": _av(0),
        }
        values[":status_pk"] = _av(_status_pk(result.status))
        sets = [
            "#status = :status",
            "status_pk = :status_pk",
            "attempts = list_append(attempts, :attempts)",
            "updated_at = :now",
            "sweeps = :zero",
        ]
        removes = ["lease_owner", "lease_until", "sending"]
        if result.channel_used is not None:
            sets.append("channel_used = :channel_used")
            values[":channel_used"] = _av(result.channel_used.value)
        if result.provider_message_id is not None:
            sets.append("provider_message_id = :pmid")
            values[":pmid"] = _av(result.provider_message_id)
        if result.next_attempt_at is not None:
            sets.append("next_attempt_at = :next")
            values[":next"] = _av(isoformat(result.next_attempt_at))
        if result.reason is not None:
            sets.append("status_reason = :reason")
            values[":reason"] = _av(result.reason)
        if result.status is Status.RETRYING:
            sets.append("sweep_status = :status, sweep_due = :due")
            retry_at = result.next_attempt_at or now
            values[":due"] = _av(_ms(retry_at + self._sweep_grace))
        elif result.webhook_due is not None:
            sets.append(_WEBHOOK_OWED)
            values.update(_webhook_owed(result.status, result.webhook_due))
        else:
            removes += ["sweep_status", "sweep_due"]
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key=_key(notification_id),
                UpdateExpression="SET " + ", ".join(sets) + " REMOVE " + ", ".join(removes),
                ConditionExpression="#status = :processing AND #round = :round AND lease_owner = :owner",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise LeaseLost(
                    f"{notification_id} round {round_no}: lease no longer held by {owner}"
                ) from None
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc
        return from_item(_plain(answer["Attributes"]))

    def close(
        self,
        notification_id: str,
        *,
        expected: Status,
        expected_round: int,
        status: Status,
        reason: str,
        now: datetime,
        webhook_due: datetime | None = None,
    ) -> bool:
        sets = "SET #status = :status, status_reason = :reason, updated_at = :now, status_pk = :status_pk"
        removes = "REMOVE lease_owner, lease_until, next_attempt_at"
        owed = _webhook_owed(status, webhook_due) if webhook_due is not None else {}
        return self._update_if(
            notification_id,
            UpdateExpression=(
                f"{sets}, {_WEBHOOK_OWED} {removes}" if owed else f"{sets} {removes}, sweep_status, sweep_due"
            ),
            ConditionExpression="#status = :expected AND #round = :round",
            ExpressionAttributeNames={"#status": "status", "#round": "round"},
            ExpressionAttributeValues={
                **owed,
                ":status": _av(status.value),
                ":reason": _av(reason),
                ":now": _av(isoformat(now)),
                ":expected": _av(expected.value),
                ":round": _av(expected_round),
                ":status_pk": _av(_status_pk(status)),
            },
        )

    # -- the client's actions ----------------------------------------------------------------------
    def cancel(
        self,
        notification_id: str,
        owner: str,
        reason: str,
        now: datetime,
        webhook_due: datetime | None = None,
    ) -> Notification:
        values = {
            ":status": _av(Status.CANCELLED.value),
            ":reason": _av(reason),
            ":status_pk": _av(_status_pk(Status.CANCELLED)),
            ":now": _av(isoformat(now)),
        }
        sets = "SET #status = :status, status_reason = :reason, updated_at = :now, status_pk = :status_pk"
        if webhook_due is None:
            update = f"{sets} REMOVE next_attempt_at, sweep_status, sweep_due"
        else:
            update = f"{sets}, {_WEBHOOK_OWED} REMOVE next_attempt_at"
            values.update(_webhook_owed(Status.CANCELLED, webhook_due))
        return self._transition(notification_id, owner, "cancel", CANCELLABLE, update, values)

    def retry(self, notification_id: str, owner: str, now: datetime, sweep_due: datetime) -> Notification:
        return self._transition(
            notification_id,
            owner,
            "retry",
            RETRYABLE,
            "SET #status = :status, updated_at = :now, next_attempt_at = :now, status_pk = :status_pk, "
            "rounds_before_retry = #round, sweep_status = :status, sweep_due = :due, sweeps = :zero "
            "REMOVE status_reason",
            {
                ":status": _av(Status.RETRYING.value),
                ":status_pk": _av(_status_pk(Status.RETRYING)),
                ":now": _av(isoformat(now)),
                ":due": _av(_ms(sweep_due)),
                ":zero": _av(0),
            },
        )

    def _transition(
        self,
        notification_id: str,
        owner: str,
        action: str,
        allowed: frozenset[Status],
        update: str,
        values: dict[str, Any],
    ) -> Notification:
        placeholders = {f":allowed{i}": _av(s.value) for i, s in enumerate(sorted(allowed))}
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key=_key(notification_id),
                UpdateExpression=update,
                ConditionExpression=(
                    f"attribute_exists(pk) AND {_OWNED} AND #status IN ({', '.join(placeholders)})"
                ),
                ExpressionAttributeNames={
                    "#status": "status",
                    "#owner": "owner",
                    **({"#round": "round"} if "#round" in update else {}),
                },
                ExpressionAttributeValues={**values, **placeholders, **_owner_values(owner)},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                old: dict[str, Any] | None = cast(dict[str, Any], exc.response).get("Item")
                if not old or _plain(old).get("owner", ANONYMOUS) != owner:
                    raise NotificationNotFound(notification_id) from None
                raise TransitionRefused(action, notification_id, Status(_plain(old)["status"])) from None
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc
        return from_item(_plain(answer["Attributes"]))

    # -- listing ------------------------------------------------------------------------------------
    def list_page(self, query: ListQuery) -> Page:
        index = LIST_INDEX if query.status is None else STATUS_INDEX
        request = self._list_request(query, query.status)
        request["ScanIndexForward"] = False  # newest first
        start = _decode_cursor(query.cursor, index, query.owner) if query.cursor else None
        if start is not None and not _within(start, request):
            # DynamoDB refuses a start key outside the key condition (moto does not): not an outage
            raise InvalidCursor("cursor is from another time range (start again without it)")
        found: list[dict[str, Any]] = []
        read = 0
        while True:  # a filter can thin a page out: read on until the page is full
            if start is not None:
                request["ExclusiveStartKey"] = start
            request["Limit"] = max(query.limit, FILTERED_READ) if query.filtered else query.limit
            answer = self._call(self._client.query, **request)
            read += answer.get("ScannedCount", 0)
            for raw in answer.get("Items", []):
                if len(found) == query.limit:  # more than a page matched: continue after the last one
                    return _page(found, index)
                found.append(raw)
            start = answer.get("LastEvaluatedKey")
            if start is None:
                return Page([from_item(_plain(raw)) for raw in found], None)
            if len(found) == query.limit:
                return _page(found, index)
            if read >= MAX_FILTERED_READ:  # a rare match: answer what was found, the cursor goes on
                return Page([from_item(_plain(raw)) for raw in found], _encode_cursor(start, index))

    def count_by_status(self, query: ListQuery) -> StatusCounts:
        counts: dict[Status, int] = {}
        capped = False
        for status in Status:
            request = self._list_request(query, status)
            request["Select"] = "COUNT"
            counts[status] = read = 0
            while True:
                request["Limit"] = MAX_COUNT_READ - read
                answer = self._call(self._client.query, **request)
                counts[status] += answer.get("Count", 0)
                read += answer.get("ScannedCount", 0)
                if "LastEvaluatedKey" not in answer:
                    break
                if read >= MAX_COUNT_READ:  # a COUNT reads (and bills) every item: stop somewhere
                    capped = True
                    break
                request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return StatusCounts(counts, capped)

    def _list_request(self, query: ListQuery, status: Status | None) -> dict[str, Any]:
        """The Query for the owner's notifications (of one status, or all): the time range is a
        range of the index's sort key (`[<owner>#]<created_at>#<id>`); channel and search filter."""
        after = isoformat(query.created_after) if query.created_after else None
        before = isoformat(query.created_before) if query.created_before else None
        names: dict[str, str] = {}
        if status is None:
            index, key_condition = LIST_INDEX, "list_pk = :pk"
            values: dict[str, Any] = {":pk": _av(_list_pk(query.owner))}
            sort_key, prefix = "list_sk", ""
        else:
            index, key_condition = STATUS_INDEX, "status_pk = :pk"
            values = {":pk": _av(_status_pk(status))}
            sort_key, prefix = "owner_sk", f"{query.owner}#"
        if prefix or after or before:  # "~" sorts after every character of a timestamp
            key_condition += f" AND {sort_key} BETWEEN :from AND :to"
            values[":from"] = _av(prefix + (after or "0"))
            values[":to"] = _av(prefix + (before or "~"))
        filters = []
        if query.channel is not None:
            filters.append("contains(channels, :channel)")
            values[":channel"] = _av(query.channel.value)
        if query.search:
            filters.append("(contains(#id, :search) OR contains(correlation_id, :search))")
            names["#id"] = "id"
            values[":search"] = _av(query.search)
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": key_condition,
            "ExpressionAttributeValues": values,
        }
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
        if names:
            request["ExpressionAttributeNames"] = names
        return request

    # -- the sweeper ------------------------------------------------------------------------------
    def stuck(self, status: Status, now: datetime, limit: int) -> list[SweepCandidate]:
        answer = self._call(
            self._client.query,
            TableName=self._table,
            IndexName=SWEEP_INDEX,
            KeyConditionExpression="sweep_status = :status AND sweep_due <= :now",
            ExpressionAttributeValues={":status": _av(status.value), ":now": _av(_ms(now))},
            Limit=limit,
        )
        candidates = []
        for raw in answer.get("Items", []):
            item = _plain(raw)
            candidates.append(
                SweepCandidate(
                    id=item["id"],
                    status=Status(item["status"]),
                    round=int(item.get("round", 0)),
                    correlation_id=item.get("correlation_id", ""),
                    sweeps=int(item.get("sweeps", 0)),
                    has_callback=bool(item.get("callback_url")),
                )
            )
        return candidates

    # -- receipts -----------------------------------------------------------------------------------
    def record_receipt(
        self,
        notification_id: str,
        provider_message_id: str,
        status: Status,
        reason: str | None,
        now: datetime,
        webhook_due: datetime | None,
    ) -> bool:
        """`sent` by sms as this provider message -> `delivered` / `undelivered`; False when the record
        is not (or no longer) that: a later state never moves back."""
        values: dict[str, Any] = {
            ":status": _av(status.value),
            ":status_pk": _av(_status_pk(status)),
            ":now": _av(isoformat(now)),
            ":sent": _av(Status.SENT.value),
            ":sms": _av(Channel.SMS.value),
            ":pmid": _av(provider_message_id),
        }
        sets = ["#status = :status", "status_pk = :status_pk", "updated_at = :now"]
        if reason is not None:
            sets.append("status_reason = :reason")
            values[":reason"] = _av(reason)
        if webhook_due is not None:
            sets.append(_WEBHOOK_OWED)
            values.update(_webhook_owed(status, webhook_due))
        return self._update_if(
            notification_id,
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression="#status = :sent AND channel_used = :sms AND provider_message_id = :pmid",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
        )

    # -- webhooks -----------------------------------------------------------------------------------
    def webhooks_owed(self, now: datetime, limit: int) -> list[OwedWebhook]:
        """Terminal records whose webhook should have been delivered (or given up on) by now."""
        answer = self._call(
            self._client.query,
            TableName=self._table,
            IndexName=SWEEP_INDEX,
            KeyConditionExpression="sweep_status = :webhook AND sweep_due <= :now",
            ExpressionAttributeValues={":webhook": _av(WEBHOOK_SWEEP_STATUS), ":now": _av(_ms(now))},
            Limit=limit,
        )
        owed = []
        for raw in answer.get("Items", []):
            item = _plain(raw)
            owed.append(OwedWebhook(item["id"], item["webhook_status"], item.get("correlation_id", "")))
        return owed

    def postpone_webhook(self, owed: OwedWebhook, due: datetime) -> bool:
        """The sweeper re-enqueued it: look again at `due` (unless its worker finished meanwhile)."""
        return self._update_if(
            owed.notification_id,
            UpdateExpression="SET sweep_due = :due",
            ConditionExpression="sweep_status = :webhook AND webhook_status = :status",
            ExpressionAttributeValues={
                ":due": _av(_ms(due)),
                ":webhook": _av(WEBHOOK_SWEEP_STATUS),
                ":status": _av(owed.status),
            },
        )

    def record_webhook(
        self, notification_id: str, attempt: WebhookAttempt, next_due: datetime | None
    ) -> None:
        """Append the attempt to the record's webhook history; the event's last attempt (`next_due`
        None) also settles what the record owes, unless it owes a newer event by now."""
        entry = {":entry": _av([webhook_to_map(attempt)])}
        append = "SET webhooks = list_append(if_not_exists(webhooks, :empty), :entry)"
        condition = "sweep_status = :webhook AND webhook_status = :status"
        owed = {":webhook": _av(WEBHOOK_SWEEP_STATUS), ":status": _av(attempt.status), ":empty": _av([])}
        if next_due is None:
            update = f"{append} REMOVE sweep_status, sweep_due, webhook_status"
        else:
            update = f"{append}, sweep_due = :due"
            owed[":due"] = _av(_ms(next_due))
        if self._update_if(
            notification_id,
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeValues={**entry, **owed},
        ):
            return
        self._call(  # it owes another event now (or nothing): the attempt joins the history alone
            self._client.update_item,
            TableName=self._table,
            Key=_key(notification_id),
            UpdateExpression=append,
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={**entry, ":empty": _av([])},
        )

    def mark_swept(self, candidate: SweepCandidate, now: datetime, next_due: datetime) -> bool:
        return self._update_if(
            candidate.id,
            UpdateExpression="SET sweeps = :after, sweep_due = :due, updated_at = :now",
            ConditionExpression="#status = :status AND #round = :round AND sweeps = :before",
            ExpressionAttributeNames={"#status": "status", "#round": "round"},
            ExpressionAttributeValues={
                ":after": _av(candidate.sweeps + 1),
                ":before": _av(candidate.sweeps),
                ":due": _av(_ms(next_due)),
                ":now": _av(isoformat(now)),
                ":status": _av(candidate.status.value),
                ":round": _av(candidate.round),
            },
        )

    def _update_if(self, notification_id: str, **update: Any) -> bool:
        """A conditional update: False when its condition did not hold."""
        try:
            self._client.update_item(TableName=self._table, Key=_key(notification_id), **update)
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc
        return True

    # -- reads ----------------------------------------------------------------------------------
    def get(self, notification_id: str) -> Notification:
        answer = self._call(
            self._client.get_item, TableName=self._table, Key=_key(notification_id), ConsistentRead=True
        )
        item = answer.get("Item")
        if not item:
            raise NotificationNotFound(notification_id)
        return from_item(_plain(item))

    def get_owned(self, notification_id: str, owner: str) -> Notification:
        """`get`, answering another owner's notification as unknown (its existence is not disclosed)."""
        found = self.get(notification_id)
        if found.owner != owner:
            raise NotificationNotFound(notification_id)
        return found

    def check(self) -> None:
        self._call(self._client.describe_table, TableName=self._table)

    def _call(self, operation: Any, **kwargs: Any) -> Any:
        try:
            return operation(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc


def _within(start: dict[str, Any], request: dict[str, Any]) -> bool:
    """Whether a cursor's sort key lies in the query's BETWEEN range (when it has one)."""
    values = request["ExpressionAttributeValues"]
    if ":from" not in values:
        return True
    sort_key = start.get("list_sk") or start.get("owner_sk") or {}
    return bool(values[":from"]["S"] <= sort_key.get("S", "") <= values[":to"]["S"])


def _page(found: list[dict[str, Any]], index: str) -> Page:
    return Page([from_item(_plain(raw)) for raw in found], _encode_cursor(found[-1], index))


def _cursor_keys(index: str) -> set[str]:
    sort_key = ("list_pk", "list_sk") if index == LIST_INDEX else ("status_pk", "owner_sk")
    return {"pk", "sk", *sort_key}


def _encode_cursor(raw: dict[str, Any], index: str) -> str:
    key = {name: raw[name] for name in sorted(_cursor_keys(index))}
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, index: str, owner: str) -> dict[str, Any]:
    """A cursor is the last item's key, base64url JSON; anything else, or another owner's, is
    refused, never passed on."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(key, dict) or set(key) != _cursor_keys(index):
            raise ValueError("unexpected key")
        if not all(isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in key.values()):
            raise ValueError("unexpected value")
        if index == LIST_INDEX and key["list_pk"]["S"] != _list_pk(owner):
            raise ValueError("another owner's cursor")
        if index == STATUS_INDEX and not key["owner_sk"]["S"].startswith(f"{owner}#"):
            raise ValueError("another owner's cursor")
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor("cursor is not one this service handed out (use next_cursor as given)") from exc
    return cast(dict[str, Any], key)


# A terminal record whose callback_url is owed a webhook: the sweeper finds it (sweep_status "webhook")
# if the webhook's message was lost, until its worker records the event's final attempt.
WEBHOOK_SWEEP_STATUS = "webhook"
_WEBHOOK_OWED = "sweep_status = :webhook, sweep_due = :webhook_due, webhook_status = :webhook_status"


def _webhook_owed(status: Status, due: datetime) -> dict[str, Any]:
    return {
        ":webhook": _av(WEBHOOK_SWEEP_STATUS),
        ":webhook_due": _av(_ms(due)),
        ":webhook_status": _av(status.value),
    }


# The caller owns the record; records from before owners existed belong to ANONYMOUS.
_OWNED = "(#owner = :owner OR (attribute_not_exists(#owner) AND :owner = :anonymous))"


def _owner_values(owner: str) -> dict[str, Any]:
    return {":owner": _av(owner), ":anonymous": _av(ANONYMOUS)}


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


# -- mapping between the domain and items ---------------------------------------------------------
def attempt_to_map(attempt: Attempt) -> dict[str, Any]:
    out: dict[str, Any] = {
        "round": attempt.round,
        "channel": attempt.channel.value,
        "outcome": attempt.outcome.value,
        "started_at": isoformat(attempt.started_at),
        "finished_at": isoformat(attempt.finished_at),
    }
    if attempt.error is not None:
        out["error"] = attempt.error
    if attempt.failure_kind is not None:
        out["failure_kind"] = attempt.failure_kind.value
    if attempt.provider_message_id is not None:
        out["provider_message_id"] = attempt.provider_message_id
    if attempt.retry_after_seconds is not None:
        out["retry_after_seconds"] = attempt.retry_after_seconds
    return out


def attempt_from_map(data: dict[str, Any]) -> Attempt:
    return Attempt(
        round=int(data["round"]),
        channel=Channel(data["channel"]),
        outcome=Outcome(data["outcome"]),
        started_at=parse_iso(data["started_at"]),
        finished_at=parse_iso(data["finished_at"]),
        error=data.get("error"),
        failure_kind=FailureKind(data["failure_kind"]) if data.get("failure_kind") else None,
        provider_message_id=data.get("provider_message_id"),
        retry_after_seconds=data.get("retry_after_seconds"),
    )


def to_item(n: Notification) -> dict[str, Any]:
    recipient = {
        k: v
        for k, v in {
            "email": n.recipient.email,
            "phone": n.recipient.phone,
            "telegram_chat_id": n.recipient.telegram_chat_id,
        }.items()
        if v is not None
    }
    item: dict[str, Any] = {
        "pk": f"NOTIFICATION#{n.id}",
        "sk": "NOTIFICATION",
        "type": ITEM_TYPE,
        "id": n.id,
        "status": n.status.value,
        "recipient": recipient,
        "message": n.message,
        "channels": [c.value for c in n.channels],
        "correlation_id": n.correlation_id,
        "round": n.round,
        "attempts": [attempt_to_map(a) for a in n.attempts],
        "sweeps": n.sweeps,
        "rounds_before_retry": n.rounds_before_retry,
        "routing": n.routing.value,
        "contents": (
            {c.value: _content_map(content) for c, content in n.contents.items()} if n.contents else None
        ),
        "template": n.template,
        "template_version": n.template_version,
        "owner": n.owner,
        "created_at": isoformat(n.created_at),
        "updated_at": isoformat(n.updated_at),
    }
    optional = {
        "subject": n.subject,
        "metadata": n.metadata,
        "channel_used": n.channel_used.value if n.channel_used else None,
        "provider_message_id": n.provider_message_id,
        "next_attempt_at": isoformat(n.next_attempt_at) if n.next_attempt_at else None,
        "request_hash": n.request_hash,
        "send_at_ms": _ms(n.send_at) if n.send_at else None,
        "sending": (
            {
                k: v
                for k, v in {
                    "round": n.sending.round,
                    "channel": n.sending.channel.value if n.sending.channel else None,
                    "started_at": isoformat(n.sending.started_at),
                    "token": n.sending.token,
                }.items()
                if v is not None
            }
            if n.sending
            else None
        ),
        "status_reason": n.status_reason,
        "callback_url": n.callback_url,
        "webhooks": [webhook_to_map(w) for w in n.webhooks] or None,
    }
    item.update({k: v for k, v in optional.items() if v is not None})
    return item


def from_item(item: dict[str, Any]) -> Notification:
    lease_until = item.get("lease_until")
    return Notification(
        id=item["id"],
        recipient=Recipient(**item["recipient"]),
        message=item["message"],
        channels=tuple(Channel(c) for c in item["channels"]),
        correlation_id=item["correlation_id"],
        created_at=parse_iso(item["created_at"]),
        updated_at=parse_iso(item["updated_at"]),
        status=Status(item["status"]),
        subject=item.get("subject"),
        metadata=item.get("metadata"),
        round=int(item.get("round", 0)),
        attempts=tuple(attempt_from_map(a) for a in item.get("attempts", [])),
        channel_used=Channel(item["channel_used"]) if item.get("channel_used") else None,
        provider_message_id=item.get("provider_message_id"),
        next_attempt_at=parse_iso(item["next_attempt_at"]) if item.get("next_attempt_at") else None,
        lease_owner=item.get("lease_owner"),
        lease_until=(
            datetime.fromtimestamp(lease_until / 1000, tz=parse_iso(item["created_at"]).tzinfo)
            if lease_until is not None
            else None
        ),
        request_hash=item.get("request_hash"),
        status_reason=item.get("status_reason"),
        sweeps=int(item.get("sweeps", 0)),
        sending=_sending(item.get("sending")),
        rounds_before_retry=int(item.get("rounds_before_retry", 0)),
        routing=Routing(item.get("routing", Routing.FALLBACK.value)),
        contents=(
            {Channel(c): _content(data) for c, data in item["contents"].items()}
            if item.get("contents")
            else None
        ),
        template=item.get("template"),
        template_version=item.get("template_version"),
        owner=item.get("owner", ANONYMOUS),
        callback_url=item.get("callback_url"),
        webhooks=tuple(webhook_from_map(w) for w in item.get("webhooks", [])),
        send_at=(
            datetime.fromtimestamp(item["send_at_ms"] / 1000, tz=parse_iso(item["created_at"]).tzinfo)
            if item.get("send_at_ms") is not None
            else None
        ),
    )


def webhook_to_map(w: WebhookAttempt) -> dict[str, Any]:
    out: dict[str, Any] = {
        "event_id": w.event_id,
        "status": w.status,
        "attempt": w.attempt,
        "at": isoformat(w.at),
        "delivered": w.delivered,
        "duration_ms": round(w.duration_ms),
        "final": w.final,
    }
    if w.status_code is not None:
        out["status_code"] = w.status_code
    if w.error is not None:
        out["error"] = w.error
    return out


def webhook_from_map(data: dict[str, Any]) -> WebhookAttempt:
    return WebhookAttempt(
        event_id=data["event_id"],
        status=data["status"],
        attempt=int(data["attempt"]),
        at=parse_iso(data["at"]),
        delivered=bool(data["delivered"]),
        status_code=int(data["status_code"]) if data.get("status_code") is not None else None,
        error=data.get("error"),
        duration_ms=float(data.get("duration_ms", 0)),
        final=bool(data.get("final", False)),
    )


def _content_map(content: Content) -> dict[str, Any]:
    return {
        k: v
        for k, v in {"text": content.text, "subject": content.subject, "html": content.html}.items()
        if v is not None
    }


def _content(data: dict[str, Any]) -> Content:
    return Content(data["text"], data.get("subject"), data.get("html"))


def _sending(data: dict[str, Any] | None) -> SendInProgress | None:
    if not data:
        return None
    channel = Channel(data["channel"]) if data.get("channel") else None
    return SendInProgress(int(data["round"]), channel, parse_iso(data["started_at"]), data.get("token"))
