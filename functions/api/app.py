"""ApiFunction: the REST API behind API Gateway. Routes translate HTTP to use cases and back."""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any, TypeVar, cast

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from notification_service import __version__
from notification_service.adapters.secrets import with_parameter_store_secrets
from notification_service.bootstrap import ApiDependencies, build_api
from notification_service.clock import utc_now
from notification_service.correlation import HEADER as CORRELATION_HEADER
from notification_service.correlation import correlation_id_from
from notification_service.domain.api_keys import HEADER as API_KEY_HEADER
from notification_service.domain.lifecycle import TransitionRefused
from notification_service.domain.model import Channel, Status
from notification_service.domain.recipient import Recipient
from notification_service.domain.template import TemplateNotFound, TemplateProblem
from notification_service.errors import (
    DependencyUnavailable,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidCursor,
    InvalidField,
    InvalidIdempotencyKey,
    NotificationNotFound,
    RateLimited,
)
from notification_service.http.admin_page import (
    ADMIN_PATH,
    CONFIG,
    PAGE,
    SECURITY_HEADERS,
    Asset,
    UnknownAsset,
    asset,
)
from notification_service.http.auth import (
    PUBLIC_PREFIXES,
    Unauthorized,
    caller_of,
    header,
)
from notification_service.http.errors import field_errors, validation_error
from notification_service.http.schemas import (
    MAX_BATCH,
    TEMPLATE_NAME_PATTERN,
    AcceptedNotification,
    BatchItemRequest,
    BatchItemResult,
    BatchRequest,
    BatchResponse,
    ErrorBody,
    FieldError,
    HealthBody,
    LogLineView,
    NotificationLogsView,
    NotificationPage,
    NotificationRequest,
    NotificationView,
    StatusCountsView,
    TemplateList,
    TemplateRequest,
    TemplateView,
)
from notification_service.http.twilio_callback import STATUS_PATH as TWILIO_STATUS_PATH
from notification_service.http.twilio_callback import ForbiddenCallback, InvalidCallback, parse_and_verify
from notification_service.lazy import Lazy
from notification_service.ports import ListQuery
from notification_service.service.notification_logs import logs_of
from notification_service.service.notifications import BatchItem, NewNotification, ReceiptOutcome
from notification_service.service.rate_limits import admit
from notification_service.service.readiness import check_dependencies
from notification_service.service.templates import TemplateService
from notification_service.settings import Settings
from pydantic import AwareDatetime, ValidationError

API_VERSION = __version__

IN_FLIGHT_RETRY_AFTER_SECONDS = 1
MAX_PAGE = 100
BATCH_PATH = "/api/v1/notifications/batch"

logger = Logger()
tracer = Tracer(patch_modules=("botocore",))  # only what it calls: patching all costs cold start
app = APIGatewayRestResolver(enable_validation=True)
DOCS_PATH = "/docs"


def security_schemes() -> dict[str, Any]:
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

    return {"apiKey": APIKey.model_validate({"name": API_KEY_HEADER, "in": APIKeyIn.header})}


def _enable_swagger() -> bool:
    """Swagger UI at /docs, added when it is first asked for: enable_swagger imports powertools'
    OpenAPI models, ~50 ms of every cold start for a page few requests want."""
    app.enable_swagger(
        path=DOCS_PATH,
        title="Notification Service",
        version=API_VERSION,
        description="Accepts notifications and delivers them over email, SMS and Telegram with fallback. "
        f"Every /api/v1 route asks for an `{API_KEY_HEADER}` header (401 without a valid one); a key "
        "sees only the notifications it created.",
        security_schemes=security_schemes(),
    )
    return True


swagger: Lazy[bool] = Lazy(_enable_swagger)
KEYED: list[dict[str, list[str]]] = [{"apiKey": []}]  # the routes that ask for X-API-Key
UNAUTHORIZED: dict[int, Any] = {
    401: {
        "description": f"No {API_KEY_HEADER}, or not a known one",
        "content": {"application/json": {"model": ErrorBody}},
    }
}
ChannelFilter = Annotated[Channel | None, Query(description="Only those with this channel in their list")]
CreatedAfter = Annotated[
    AwareDatetime | None, Query(description="Only those created at or after (RFC 3339, with an offset)")
]
CreatedBefore = Annotated[AwareDatetime | None, Query(description="Only those created before (RFC 3339)")]
SearchText = Annotated[
    str | None,
    Query(max_length=200, description="Only those whose id or correlation id contains this (case-sensitive)"),
]
dependencies: Lazy[ApiDependencies] = Lazy(build_api)
# Provider receipts need the Twilio auth token: deployed, read from SSM on the first receipt only.
receipt_settings: Lazy[Settings] = Lazy(lambda: with_parameter_store_secrets(dependencies.get().settings))


ErrorHandler = TypeVar("ErrorHandler", bound=Callable[..., Response[Any]])


def on_error(exc_class: type[Exception]) -> Callable[[ErrorHandler], ErrorHandler]:
    """`app.exception_handler`, typed."""
    decorator: Callable[[ErrorHandler], ErrorHandler] = app.exception_handler(exc_class)
    return decorator


def _error(
    status: int,
    code: str,
    message: str,
    details: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    body = ErrorBody(error=code, message=message, details=details or [])
    return Response(status, content_types.APPLICATION_JSON, body.model_dump_json(), headers=headers)


# -- routes -----------------------------------------------------------------------------------------
@app.post(
    "/api/v1/notifications",
    security=KEYED,
    status_code=HTTPStatus.ACCEPTED,
    summary="Accept a notification for delivery",
    tags=["notifications"],
    responses={
        **UNAUTHORIZED,
        202: {
            "description": "Stored and queued",
            "content": {"application/json": {"model": AcceptedNotification}},
        },
        400: {
            "description": "Idempotency-Key too long",
            "content": {"application/json": {"model": ErrorBody}},
        },
        409: {
            "description": "A request with this Idempotency-Key is in flight",
            "content": {"application/json": {"model": ErrorBody}},
        },
        413: {"description": "Body too large", "content": {"application/json": {"model": ErrorBody}}},
        415: {"description": "Body is not JSON", "content": {"application/json": {"model": ErrorBody}}},
        422: {
            "description": "Invalid field, or Idempotency-Key reused with another body",
            "content": {"application/json": {"model": ErrorBody}},
        },
        503: {
            "description": "A dependency is unavailable; retry after Retry-After",
            "content": {"application/json": {"model": ErrorBody}},
        },
    },
)
def create_notification(
    request: NotificationRequest,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="idempotency-key",
            description="Same key + same body: the same notification, answered "
            "again with Idempotency-Replayed: true. Kept 24 h. At most 255 characters.",
        ),
    ] = None,
) -> Response[AcceptedNotification]:
    limits = _rate_limit([request.recipient.to_domain()])
    receipt = dependencies.get().notifications.accept(
        _new_notification(request),
        correlation_id=app.context["correlation_id"],
        idempotency_key=idempotency_key,
        payload=request.model_dump(mode="json"),
    )
    logger.info(
        "notification accepted",
        extra={
            "notification_id": receipt.id,
            "replayed": receipt.replayed,
            "recipient": request.recipient.to_domain().masked(),
        },
    )
    headers = {"Location": f"/api/v1/notifications/{receipt.id}", **limits}
    if receipt.replayed:
        headers["Idempotency-Replayed"] = "true"
    body = AcceptedNotification(id=receipt.id, status=receipt.status, created_at=receipt.created_at)
    return Response(HTTPStatus.ACCEPTED, content_types.APPLICATION_JSON, body, headers=headers)


@app.post(
    BATCH_PATH,
    security=KEYED,
    summary=f"Accept up to {MAX_BATCH} notifications at once",
    tags=["notifications"],
    responses={
        **UNAUTHORIZED,
        202: {"description": "All accepted", "content": {"application/json": {"model": BatchResponse}}},
        207: {
            "description": "Some not accepted: each item says why (its `error` is as a single POST's)",
            "content": {"application/json": {"model": BatchResponse}},
        },
        413: {"description": "Body too large", "content": {"application/json": {"model": ErrorBody}}},
        422: {
            "description": "Not a list of 1 to 100 objects under `notifications`",
            "content": {"application/json": {"model": ErrorBody}},
        },
    },
)
def create_batch(request: BatchRequest) -> Response[BatchResponse]:
    results: dict[int, BatchItemResult] = {}
    valid: list[tuple[int, BatchItem]] = []
    for number, raw in enumerate(request.notifications):
        try:
            item = BatchItemRequest.model_validate(raw)
        except ValidationError as exc:
            results[number] = BatchItemResult(
                index=number, error=validation_error(field_errors(exc.errors()))
            )
            continue
        payload = item.model_dump(mode="json", exclude={"idempotency_key"})
        try:
            new = _new_notification(item)
        except (TemplateProblem, InvalidField) as exc:
            details = [FieldError(field=exc.field, reason=exc.reason)]
            results[number] = BatchItemResult(index=number, error=validation_error(details))
            continue
        valid.append((number, BatchItem(new, item.idempotency_key, payload)))
    # the valid items count, together: a batch over a limit is refused whole (nothing accepted)
    limits = _rate_limit([item.new.recipient for _, item in valid], cost=len(valid)) if valid else {}
    answers = dependencies.get().notifications.accept_many(
        [item for _, item in valid], correlation_id=app.context["correlation_id"]
    )
    for (number, _), answer in zip(valid, answers, strict=True):
        if isinstance(answer, Exception):
            results[number] = BatchItemResult(index=number, error=_item_error(answer))
        else:
            results[number] = BatchItemResult(
                index=number, id=answer.id, status=answer.status, replayed=answer.replayed or None
            )
    items = [results[number] for number in range(len(request.notifications))]
    rejected = sum(1 for item in items if item.error is not None)
    logger.info("batch accepted", extra={"accepted": len(items) - rejected, "rejected": rejected})
    body = BatchResponse(accepted=len(items) - rejected, rejected=rejected, items=items)
    return Response(
        207 if rejected else HTTPStatus.ACCEPTED, content_types.APPLICATION_JSON, body, headers=limits
    )


def _rate_limit(recipients: list[Recipient], cost: int = 1) -> dict[str, str]:
    """The RateLimit-* headers to answer with (service/rate_limits.py admits; RateLimited is a 429)."""
    decision = admit(dependencies.get().rate_limiter, _caller(), recipients, cost)
    return decision.headers() if decision is not None else {}


def _caller() -> str:
    """The API key's name (see notification_service.http.auth), set before routing."""
    return str(app.context["caller"])


def _new_notification(request: NotificationRequest) -> NewNotification:
    """The request as the use case takes it; a template is rendered here, so that a missing variable
    is a 422 now rather than a failure at dispatch time (raises TemplateProblem)."""
    channels = tuple(request.channels)
    rendered = None
    message, subject = request.message or "", request.subject
    if request.template is not None:
        templates = dependencies.get().templates
        if templates is None:
            raise TemplateProblem("template", "templates are not available")
        rendered = templates.render(request.template, channels, request.variables)
        message, email_subject = rendered.headline(channels)
        subject = email_subject if email_subject is not None else subject
    if request.callback_url is not None:
        dependencies.get().notifications.check_callback(request.callback_url)
    return NewNotification(
        owner=_caller(),
        callback_url=request.callback_url,
        recipient=request.recipient.to_domain(),
        message=message,
        channels=channels,
        subject=subject,
        metadata=request.metadata,
        send_at=request.send_at,
        routing=request.routing,
        rendered=rendered,
    )


# What a request, or one item of a batch, answers for the failures that can befall an accepted body:
# one code and one wording, used by the error handlers below and by the batch route.
FAILURE_CODES: dict[type[Exception], str] = {
    IdempotencyKeyReused: "idempotency_key_reused",
    IdempotencyKeyInFlight: "idempotency_key_in_flight",
    DependencyUnavailable: "service_unavailable",
}


def _failure_message(exc: Exception) -> str:
    if isinstance(exc, DependencyUnavailable):
        return f"{exc.dependency} is unavailable; try again shortly"
    return str(exc)


def _item_error(exc: Exception) -> ErrorBody:
    """A batch item's failure, worded as the single POST's error handlers word it."""
    code = next((c for kind, c in FAILURE_CODES.items() if isinstance(exc, kind)), None)
    if code is None:
        logger.error("unexpected batch item failure", extra={"error": type(exc).__name__})
        return ErrorBody(error="internal_error", message="unexpected error")
    return ErrorBody(error=code, message=_failure_message(exc))


@app.get(
    "/api/v1/notifications/<notification_id>",
    security=KEYED,
    summary="A notification's status and attempt history",
    tags=["notifications"],
    responses={
        **UNAUTHORIZED,
        200: {"description": "Found", "content": {"application/json": {"model": NotificationView}}},
        404: {"description": "Unknown id", "content": {"application/json": {"model": ErrorBody}}},
        422: {"description": "Invalid id", "content": {"application/json": {"model": ErrorBody}}},
    },
)
def get_notification(notification_id: Annotated[str, Path(max_length=64)]) -> NotificationView:
    return NotificationView.of(dependencies.get().notifications.get(notification_id, _caller()))


@app.get(
    "/api/v1/notifications",
    security=KEYED,
    summary="List notifications, newest first",
    tags=["notifications"],
    responses={
        **UNAUTHORIZED,
        200: {"description": "A page", "content": {"application/json": {"model": NotificationPage}}},
        400: {"description": "Unknown cursor", "content": {"application/json": {"model": ErrorBody}}},
        422: {
            "description": "Invalid filter or limit",
            "content": {"application/json": {"model": ErrorBody}},
        },
    },
)
def list_notifications(
    status: Annotated[Status | None, Query(description="Only this status")] = None,
    channel: ChannelFilter = None,
    created_after: CreatedAfter = None,
    created_before: CreatedBefore = None,
    q: SearchText = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"1 to {MAX_PAGE}")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=2048, description="`next_cursor` of the previous page")
    ] = None,
) -> NotificationPage:
    query = _list_query(channel, created_after, created_before, q, status=status, limit=limit, cursor=cursor)
    page = dependencies.get().notifications.list(query)
    return NotificationPage(items=[NotificationView.of(n) for n in page.items], next_cursor=page.next_cursor)


@app.get(
    "/api/v1/notifications/counts",
    security=KEYED,
    summary="How many notifications have each status",
    description="With the list's filters (but status). Each status is a count over its own index "
    "partition: meant for dashboards, not for every request.",
    tags=["notifications"],
    responses={
        **UNAUTHORIZED,
        200: {"description": "Counts", "content": {"application/json": {"model": StatusCountsView}}},
        422: {"description": "Invalid filter", "content": {"application/json": {"model": ErrorBody}}},
    },
)
def count_notifications(
    channel: ChannelFilter = None,
    created_after: CreatedAfter = None,
    created_before: CreatedBefore = None,
    q: SearchText = None,
) -> StatusCountsView:
    query = _list_query(channel, created_after, created_before, q)
    found = dependencies.get().notifications.count_by_status(query)
    return StatusCountsView(counts=found.counts, total=sum(found.counts.values()), capped=found.capped)


def _list_query(
    channel: Channel | None,
    created_after: datetime | None,
    created_before: datetime | None,
    search: str | None,
    **rest: Any,
) -> ListQuery:
    if created_after and created_before and created_after >= created_before:
        raise InvalidField("query.created_before", "must be later than created_after")
    return ListQuery(
        owner=_caller(),
        channel=channel,
        created_after=created_after,
        created_before=created_before,
        search=(search or "").strip() or None,  # a blank search is no filter
        **rest,
    )


@app.get(
    "/api/v1/notifications/<notification_id>/logs",
    security=KEYED,
    summary="A notification's log lines (`notifyctl logs --correlation-id C --notification-id N`)",
    tags=["notifications"],
    responses={
        **UNAUTHORIZED,
        200: {
            "description": "Oldest first",
            "content": {"application/json": {"model": NotificationLogsView}},
        },
        404: {"description": "Unknown id", "content": {"application/json": {"model": ErrorBody}}},
        503: {
            "description": "The logs cannot be read",
            "content": {"application/json": {"model": ErrorBody}},
        },
    },
)
def notification_logs(notification_id: Annotated[str, Path(max_length=64)]) -> NotificationLogsView:
    deps = dependencies.get()
    notification = deps.notifications.get(notification_id, _caller())
    if deps.log_lines is None:
        raise DependencyUnavailable("logs", "not configured")
    found = logs_of(notification, deps.log_lines, utc_now())
    return NotificationLogsView(
        notification_id=notification.id,
        correlation_id=notification.correlation_id,
        command=found.command,
        events=[LogLineView.of(line) for line in found.lines],
    )


@app.post(
    "/api/v1/notifications/<notification_id>/cancel",
    security=KEYED,
    summary="Cancel a notification that has not been delivered",
    tags=["notifications"],
    responses={
        **UNAUTHORIZED,
        200: {"description": "Cancelled", "content": {"application/json": {"model": NotificationView}}},
        404: {"description": "Unknown id", "content": {"application/json": {"model": ErrorBody}}},
        409: {
            "description": "Already sent, failed or cancelled, or a round is delivering it right now",
            "content": {"application/json": {"model": ErrorBody}},
        },
    },
)
def cancel_notification(notification_id: Annotated[str, Path(max_length=64)]) -> NotificationView:
    cancelled = dependencies.get().notifications.cancel(notification_id, _caller())
    logger.info("notification cancelled", extra={"notification_id": notification_id})
    return NotificationView.of(cancelled)


@app.post(
    "/api/v1/notifications/<notification_id>/retry",
    security=KEYED,
    summary="Give a failed notification fresh rounds",
    tags=["notifications"],
    responses={
        **UNAUTHORIZED,
        202: {"description": "Queued again", "content": {"application/json": {"model": NotificationView}}},
        404: {"description": "Unknown id", "content": {"application/json": {"model": ErrorBody}}},
        409: {"description": "Not failed", "content": {"application/json": {"model": ErrorBody}}},
        503: {
            "description": "Queued later by the sweeper; the record is already `retrying`",
            "content": {"application/json": {"model": ErrorBody}},
        },
    },
)
def retry_notification(notification_id: Annotated[str, Path(max_length=64)]) -> Response[NotificationView]:
    retried = dependencies.get().notifications.retry(notification_id, _caller())
    logger.info(
        "notification retried", extra={"notification_id": notification_id, "round": retried.round + 1}
    )
    return Response(HTTPStatus.ACCEPTED, content_types.APPLICATION_JSON, NotificationView.of(retried))


TEMPLATE_RESPONSES: dict[int, Any] = UNAUTHORIZED | {
    404: {"description": "Unknown template", "content": {"application/json": {"model": ErrorBody}}},
    422: {"description": "Invalid name or part", "content": {"application/json": {"model": ErrorBody}}},
}
TemplateName = Annotated[str, Path(pattern=TEMPLATE_NAME_PATTERN, description="1-64 of A-Z a-z 0-9 _ . -")]


def _templates() -> TemplateService:
    templates = dependencies.get().templates
    if templates is None:
        raise DependencyUnavailable("templates", "not configured")
    return templates


@app.put(
    "/api/v1/templates/<name>",
    security=KEYED,
    summary="Create or replace a template (its version goes up by one)",
    tags=["templates"],
    responses={200: {"description": "Stored", "content": {"application/json": {"model": TemplateView}}}}
    | TEMPLATE_RESPONSES,
)
def put_template(name: TemplateName, template: TemplateRequest) -> TemplateView:
    stored = _templates().put(name, template.parts())
    logger.info("template stored", extra={"template": name, "version": stored.version})
    return TemplateView.of(stored)


@app.get(
    "/api/v1/templates/<name>",
    security=KEYED,
    summary="A template",
    tags=["templates"],
    responses={200: {"description": "Found", "content": {"application/json": {"model": TemplateView}}}}
    | TEMPLATE_RESPONSES,
)
def get_template(name: TemplateName) -> TemplateView:
    return TemplateView.of(_templates().get(name))


@app.delete(
    "/api/v1/templates/<name>",
    security=KEYED,
    summary="Delete a template (notifications made from it keep their rendered content)",
    tags=["templates"],
    responses={204: {"description": "Deleted"}} | TEMPLATE_RESPONSES,
)
def delete_template(name: TemplateName) -> Response[str]:
    _templates().delete(name)
    return Response(HTTPStatus.NO_CONTENT, content_types.APPLICATION_JSON, "")


@app.get(
    "/api/v1/templates",
    security=KEYED,
    summary="Every template, by name",
    tags=["templates"],
    responses={
        **UNAUTHORIZED,
        200: {"description": "The templates", "content": {"application/json": {"model": TemplateList}}},
    },
)
def list_templates() -> TemplateList:
    return TemplateList(items=[TemplateView.of(t) for t in _templates().list()])


@app.post(
    TWILIO_STATUS_PATH,
    summary="Twilio status callbacks: an sms `sent` becomes `delivered` or `undelivered`",
    description="Signed by Twilio (`X-Twilio-Signature`, checked with the auth token); form-encoded "
    "`MessageSid`, `MessageStatus`, `ErrorCode`; the notification id in the query, as the SMS provider "
    "set it. Needs no API key.",
    tags=["providers"],
    responses={
        204: {"description": "Recorded, or nothing to record (not final, not this message, already final)"},
        400: {"description": "A field is missing", "content": {"application/json": {"model": ErrorBody}}},
        403: {"description": "Not signed by Twilio", "content": {"application/json": {"model": ErrorBody}}},
        404: {"description": "Unknown notification", "content": {"application/json": {"model": ErrorBody}}},
        503: {
            "description": "The round that sent it has not recorded it yet: try again after Retry-After",
            "content": {"application/json": {"model": ErrorBody}},
        },
    },
)
def twilio_status() -> Response[Any]:
    settings = receipt_settings.get()
    callback = parse_and_verify(
        app.current_event.raw_event,
        settings.twilio_auth_token.get_secret_value(),
        settings.twilio_status_callback_base or None,
    )
    receipt = callback.receipt
    log_keys = {"notification_id": callback.notification_id, "message_status": callback.message_status}
    if receipt is None:
        logger.info("twilio status callback: not final", extra=log_keys)
        return Response(HTTPStatus.NO_CONTENT, content_types.APPLICATION_JSON, "")
    outcome = dependencies.get().notifications.record_receipt(
        callback.notification_id, callback.message_sid, receipt, callback.error_code
    )
    logger.info("twilio receipt", extra={**log_keys, "outcome": outcome.value})
    if outcome is ReceiptOutcome.TOO_EARLY:
        return _error(
            503,
            "not_yet_sent",
            "the notification has not recorded this message yet; try again",
            headers={"Retry-After": "1"},
        )
    return Response(HTTPStatus.NO_CONTENT, content_types.APPLICATION_JSON, "")


@app.get("/health", summary="Liveness", tags=["operations"])
def health() -> HealthBody:
    return HealthBody(status="ok")


@app.get(
    "/ready",
    summary="Readiness: DynamoDB, SQS and Redis answer",
    tags=["operations"],
    responses={
        200: {"description": "Ready", "content": {"application/json": {"model": HealthBody}}},
        503: {
            "description": "A dependency failed; `checks` names it",
            "content": {"application/json": {"model": HealthBody}},
        },
    },
)
def ready() -> Response[HealthBody]:
    deps = dependencies.get()
    latency: dict[str, float] = {}
    checks = check_dependencies(deps.health_checks, deps.provider_health, latency)
    healthy = all(result == "ok" for result in checks.values())
    body = HealthBody(status="ready" if healthy else "unavailable", checks=checks, latency_ms=latency)
    return Response(200 if healthy else 503, content_types.APPLICATION_JSON, body)


@app.get(
    "/metrics",
    summary="Prometheus metrics, aggregated across every function instance",
    tags=["operations"],
    responses={
        200: {"description": "Prometheus text format 0.0.4", "content": {"text/plain": {}}},
        503: {
            "description": "The cache that holds them is unavailable",
            "content": {"application/json": {"model": ErrorBody}},
        },
    },
)
def metrics() -> Response[str]:
    source = dependencies.get().metrics
    if source is None:
        raise DependencyUnavailable("metrics", "not configured")
    return Response(200, "text/plain; version=0.0.4; charset=utf-8", source.exposition())


@app.get(ADMIN_PATH, include_in_schema=False)
def admin_page() -> Response[str]:
    if app.current_event.path.endswith("/"):  # its files are relative to .../admin, not .../admin/
        return Response(308, content_types.TEXT_PLAIN, "", headers={"Location": "../admin"})
    return _served(asset(PAGE))


@app.get(f"{ADMIN_PATH}/<name>", include_in_schema=False)
def admin_file(name: str) -> Response[str]:
    if name == CONFIG:  # made here: the page asks first, so it never meets a 401 it could avoid
        required = dependencies.get().settings.keys_required
        return _served(Asset(content_types.APPLICATION_JSON, json.dumps({"api_key_required": required})))
    try:
        if name == PAGE:  # the page only at /admin: its relative URLs would not resolve from here
            raise UnknownAsset(name)
        return _served(asset(name))
    except UnknownAsset:
        return _error(404, "not_found", f"no admin file {name}")


def _served(found: Asset) -> Response[str]:
    return Response(200, found.content_type, found.body, headers=dict(SECURITY_HEADERS))


@app.get("/openapi.json", include_in_schema=False)
def openapi_json() -> Response[str]:
    return Response(
        200,
        content_types.APPLICATION_JSON,
        app.get_openapi_json_schema(
            title="Notification Service", version=API_VERSION, security_schemes=security_schemes()
        ),
    )


# -- errors -----------------------------------------------------------------------------------------
@on_error(RequestUnsupportedContentType)
def unsupported_content_type(_exc: RequestUnsupportedContentType) -> Response[Any]:
    return _error(
        415,
        "unsupported_media_type",
        "send the body as JSON with Content-Type: application/json",
        [FieldError(field="header.Content-Type", reason="must be application/json")],
    )


@on_error(UnicodeDecodeError)
def undecodable_body(_exc: UnicodeDecodeError) -> Response[Any]:
    return _error(
        400,
        "bad_request",
        "the body is not valid UTF-8",
        [FieldError(field="body", reason="not valid UTF-8")],
    )


@on_error(binascii.Error)
def bad_base64_body(_exc: binascii.Error) -> Response[Any]:
    return _error(
        400,
        "bad_request",
        "the body is not valid base64",
        [FieldError(field="body", reason="not valid base64")],
    )


@on_error(RequestValidationError)
def invalid_request(exc: RequestValidationError) -> Response[Any]:
    body = validation_error(field_errors(exc.errors()))
    return Response(422, content_types.APPLICATION_JSON, body.model_dump_json())


@on_error(NotificationNotFound)
def not_found(exc: NotificationNotFound) -> Response[Any]:
    return _error(404, "not_found", str(exc))


@on_error(TransitionRefused)
def transition_refused(exc: TransitionRefused) -> Response[Any]:
    return _error(409, f"cannot_{exc.action}", str(exc))


@on_error(TemplateNotFound)
def template_not_found(exc: TemplateNotFound) -> Response[Any]:
    return _error(404, "not_found", str(exc))


@on_error(ForbiddenCallback)
def forbidden_callback(exc: ForbiddenCallback) -> Response[Any]:
    logger.warning("provider callback refused", extra={"reason": exc.reason})
    return _error(403, "forbidden", f"not a valid provider callback: {exc.reason}")


@on_error(InvalidCallback)
def invalid_callback(exc: InvalidCallback) -> Response[Any]:
    return _error(400, "bad_request", str(exc), [FieldError(field=exc.field, reason=exc.reason)])


@on_error(InvalidField)
@on_error(TemplateProblem)
def template_problem(exc: TemplateProblem | InvalidField) -> Response[Any]:
    body = validation_error([FieldError(field=exc.field, reason=exc.reason)])
    return Response(422, content_types.APPLICATION_JSON, body.model_dump_json())


@on_error(InvalidCursor)
def invalid_cursor(exc: InvalidCursor) -> Response[Any]:
    return _error(400, "invalid_cursor", str(exc), [FieldError(field="query.cursor", reason=str(exc))])


@on_error(InvalidIdempotencyKey)
def invalid_key(exc: InvalidIdempotencyKey) -> Response[Any]:
    return _error(
        400,
        "invalid_idempotency_key",
        str(exc),
        [FieldError(field="header.Idempotency-Key", reason=str(exc))],
    )


@on_error(IdempotencyKeyReused)
def key_reused(exc: IdempotencyKeyReused) -> Response[Any]:
    return _error(
        422,
        FAILURE_CODES[IdempotencyKeyReused],
        _failure_message(exc),
        [FieldError(field="header.Idempotency-Key", reason=str(exc))],
    )


@on_error(IdempotencyKeyInFlight)
def key_in_flight(exc: IdempotencyKeyInFlight) -> Response[Any]:
    return _error(
        409,
        FAILURE_CODES[IdempotencyKeyInFlight],
        _failure_message(exc),
        headers={"Retry-After": str(IN_FLIGHT_RETRY_AFTER_SECONDS)},
    )


@on_error(RateLimited)
def rate_limited(exc: RateLimited) -> Response[Any]:
    decision = exc.decision
    field = f"header.{API_KEY_HEADER}" if decision.refused_by == "api_key" else "recipient"
    logger.info("request refused by a rate limit", extra={"limit": decision.refused_by})
    return _error(
        429,
        "rate_limited",
        str(exc),
        [FieldError(field=field, reason=f"more than {decision.limit} allowed")],
        headers=decision.headers(),
    )


@on_error(DependencyUnavailable)
def unavailable(exc: DependencyUnavailable) -> Response[Any]:
    logger.warning("dependency unavailable", extra={"dependency": exc.dependency, "detail": exc.detail})
    return _error(
        503,
        FAILURE_CODES[DependencyUnavailable],
        _failure_message(exc),
        headers={"Retry-After": str(exc.retry_after_seconds)},
    )


@app.not_found
def unknown_route(_exc: Exception) -> Response[Any]:
    return _error(404, "not_found", f"no route for {app.current_event.http_method} {app.current_event.path}")


@on_error(Exception)
def unexpected(exc: Exception) -> Response[Any]:
    logger.exception("unhandled error")
    return _error(500, "internal_error", "unexpected error; the correlation id identifies it in the logs")


# -- entry point ------------------------------------------------------------------------------------
def _body_size(event: dict[str, Any]) -> int:
    body = event.get("body") or ""
    size = len(body.encode()) if isinstance(body, str) else len(body)
    return size * 3 // 4 if event.get("isBase64Encoded") else size


def _content_type(event: dict[str, Any]) -> str:
    return header(event.get("headers"), "content-type") or ""


Refusal = tuple[int, ErrorBody, dict[str, list[str]]]


def _unauthorized(refused: Unauthorized) -> Refusal:
    logger.info("request refused: no valid API key", extra={"reason": refused.reason})
    body = ErrorBody(
        error="unauthorized",
        message=f"send a valid API key in the {API_KEY_HEADER} header",
        details=[FieldError(field=f"header.{API_KEY_HEADER}", reason=refused.reason)],
    )
    return 401, body, {"WWW-Authenticate": [f'ApiKey header="{API_KEY_HEADER}"']}


def _refused_before_routing(event: dict[str, Any], limit: int) -> Refusal | None:
    """What is answered before routing, because validation would otherwise parse the body first:
    a body over the limit (413), or one that is not JSON (415; powertools would parse a form)."""
    if _body_size(event) > limit:
        return (
            413,
            ErrorBody(
                error="payload_too_large",
                message=f"the body must be at most {limit} bytes",
                details=[FieldError(field="body", reason=f"larger than {limit} bytes")],
            ),
            {},
        )
    content_type = _content_type(event).strip().lower()
    form_allowed = str(event.get("path") or "").startswith(PUBLIC_PREFIXES)  # provider callbacks: forms
    if (
        event.get("body")
        and content_type
        and not form_allowed
        and not content_type.startswith(content_types.APPLICATION_JSON)
    ):
        return (
            415,
            ErrorBody(
                error="unsupported_media_type",
                message="send the body as JSON with Content-Type: application/json",
                details=[FieldError(field="header.Content-Type", reason="must be application/json")],
            ),
            {},
        )
    return None


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    correlation_id = correlation_id_from(event.get("headers"))
    logger.set_correlation_id(correlation_id)
    cast(Any, app).append_context(correlation_id=correlation_id)
    deps = dependencies.get()
    deps.idempotency.register_lambda_context(context)
    caller = caller_of(event, deps.settings.api_key_entries)
    logger.append_keys(caller=caller if isinstance(caller, str) else None)
    is_batch = str(event.get("path", "")).rstrip("/").endswith(BATCH_PATH)
    limit = deps.settings.max_batch_body_bytes if is_batch else deps.settings.max_body_bytes
    refused = _unauthorized(caller) if isinstance(caller, Unauthorized) else None
    refused = refused or _refused_before_routing(event, limit)
    if refused is not None:
        status, error, extra_headers = refused
        result: dict[str, Any] = {
            "statusCode": status,
            "body": error.model_dump_json(),
            "isBase64Encoded": False,
            "multiValueHeaders": {"Content-Type": [content_types.APPLICATION_JSON], **extra_headers},
        }
    else:
        cast(Any, app).append_context(caller=caller)
        if str(event.get("path") or "").rstrip("/") == DOCS_PATH:
            swagger.get()
        result = app.resolve(event, context)
    headers: dict[str, list[str]] = result.get("multiValueHeaders") or {}
    headers[CORRELATION_HEADER] = [correlation_id]
    result["multiValueHeaders"] = headers
    return result
