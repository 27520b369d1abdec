"""Request and response bodies of the REST API; their JSON schema is the OpenAPI document's."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from notification_service.clock import isoformat, utc_now
from notification_service.domain.channel_limits import MAX_LENGTH, fits
from notification_service.domain.model import (
    DEFAULT_CHANNELS,
    Attempt,
    Channel,
    Notification,
    Routing,
    Status,
    WebhookAttempt,
)
from notification_service.domain.recipient import (
    InvalidAddress,
    Recipient,
    validate_email,
    validate_phone,
    validate_telegram_chat_id,
)
from notification_service.domain.schedule import too_far_ahead
from notification_service.domain.template import Template, TemplatePart
from notification_service.ports import LogLine

MAX_SUBJECT_LENGTH = 998  # RFC 5322's line limit
MAX_METADATA_BYTES = 4_096
MAX_MESSAGE_LENGTH = 10_000
TEMPLATE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MAX_VARIABLES_BYTES = 16_384
MAX_TEMPLATE_TEXT = 10_000


class RecipientAddresses(BaseModel):
    """Per-channel addresses; a channel without one is skipped."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, examples=["user@example.com"])
    phone: str | None = Field(default=None, description="E.164", examples=["+447911123456"])
    telegram_chat_id: str | None = Field(default=None, examples=["123456789"])

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else validate_email(value)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return None if value is None else validate_phone(value)

    @field_validator("telegram_chat_id", mode="before")
    @classmethod
    def _chat(cls, value: object) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise InvalidAddress("must be a string or an integer")
        return validate_telegram_chat_id(value)

    @model_validator(mode="after")
    def _at_least_one(self) -> RecipientAddresses:
        if not (self.email or self.phone or self.telegram_chat_id):
            raise InvalidAddress("needs at least one of email, phone, telegram_chat_id")
        return self

    def to_domain(self) -> Recipient:
        return Recipient(self.email, self.phone, self.telegram_chat_id)


def _recipient(value: object) -> object:
    if isinstance(value, str):
        parsed = Recipient.parse(value)
        return {"email": parsed.email, "phone": parsed.phone, "telegram_chat_id": parsed.telegram_chat_id}
    return value


RECIPIENT_SCHEMA: dict[str, Any] = {
    "description": (
        "An email address, an E.164 phone number or a Telegram chat id; or an object of per-channel "
        "addresses. A channel with no address for this recipient is recorded as a skipped attempt."
    ),
    "anyOf": [
        {"type": "string", "examples": ["user@example.com"]},
        {"$ref": "#/components/schemas/RecipientAddresses"},
    ],
}

RecipientField = Annotated[RecipientAddresses, BeforeValidator(_recipient), WithJsonSchema(RECIPIENT_SCHEMA)]


class NotificationRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "recipient": "user@example.com",
                    "message": "Hello from notification service!",
                    "channels": ["email", "sms", "telegram"],
                }
            ]
        },
    )

    recipient: RecipientField
    channels: list[Channel] = Field(
        default_factory=lambda: list(DEFAULT_CHANNELS),
        min_length=1,
        max_length=len(Channel),
        description="Ordered fallback chain; unique. Default: email, sms, telegram.",
    )
    template: str | None = Field(
        default=None,
        pattern=TEMPLATE_NAME_PATTERN,
        description="Instead of `message`: a stored template's name, rendered with `variables` at once "
        "(a missing variable is a 422 naming it)",
    )
    variables: dict[str, Any] | None = Field(default=None, description="The template's variables")
    message: str | None = Field(
        default=None,
        validate_default=True,
        min_length=1,
        max_length=MAX_MESSAGE_LENGTH,
        description="The text to send (required unless `template` is given)",
    )
    subject: str | None = Field(default=None, max_length=MAX_SUBJECT_LENGTH, description="Email subject")
    metadata: dict[str, Any] | None = Field(
        default=None, description=f"Echoed back; at most {MAX_METADATA_BYTES} bytes as JSON"
    )
    routing: Routing = Field(
        default=Routing.FALLBACK,
        description="`fallback`: the channels in order, the first success ends it (`sent`). `all`: every "
        "channel, each with its own attempts; `sent` when all delivered, `partially_sent` when some did.",
    )
    send_at: AwareDatetime | None = Field(
        default=None,
        description="Deliver no earlier than this (ISO 8601 with an offset, at most 30 days ahead; "
        "a past time means now). Status `scheduled` until then; cancellable.",
        examples=["2026-12-01T09:00:00+01:00"],
    )

    callback_url: str | None = Field(
        default=None,
        max_length=2048,
        description="Told of every terminal status (`sent`, `partially_sent`, `failed`, `cancelled`) by a "
        "signed POST (`X-Signature: t=...,v1=<HMAC-SHA256>`): an `https` URL of a public address",
    )

    @field_validator("send_at")
    @classmethod
    def _within_thirty_days(cls, value: datetime | None) -> datetime | None:
        if value is not None and too_far_ahead(value, utc_now()):
            raise ValueError("must be at most 30 days ahead")
        return value

    @field_validator("variables")
    @classmethod
    def _small_variables(cls, value: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        if value is not None and info.data.get("template") is None:
            raise ValueError("go with `template`")
        if value is not None and len(json.dumps(value, default=str)) > MAX_VARIABLES_BYTES:
            raise ValueError(f"must be at most {MAX_VARIABLES_BYTES} bytes as JSON")
        return value

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            if info.data.get("template") is None:
                raise ValueError("field required (or give `template`)")
            return None
        if info.data.get("template") is not None:
            raise ValueError("give `message` or `template`, not both")
        if not value.strip():
            raise ValueError("must not be blank")
        channels: list[Channel] = info.data.get("channels") or []  # absent when channels were invalid
        if channels and not any(fits(channel, value) for channel in channels):
            longest = max(channels, key=lambda c: MAX_LENGTH[c])
            raise ValueError(
                f"is {len(value)} characters; the longest any requested channel takes is "
                f"{MAX_LENGTH[longest]} ({longest.value})"
            )
        return value

    @field_validator("subject")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and ("\r" in value or "\n" in value):
            raise ValueError("must be a single line (no line breaks)")
        return value

    @field_validator("channels")
    @classmethod
    def _unique(cls, value: list[Channel]) -> list[Channel]:
        seen: set[Channel] = set()
        for channel in value:
            if channel in seen:
                raise ValueError(f"channel {channel.value!r} is listed twice")
            seen.add(channel)
        return value

    @field_validator("metadata")
    @classmethod
    def _small(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            size = len(json.dumps(value, separators=(",", ":"), allow_nan=False))
        except ValueError:
            raise ValueError("numbers must be finite (no NaN or Infinity)") from None
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"must be at most {MAX_METADATA_BYTES} bytes as JSON")
        _check_storable(value, depth=1)
        return value


MAX_METADATA_DEPTH = 16


def _check_storable(value: Any, depth: int) -> None:
    """What DynamoDB can store: nesting within bounds, numbers of at most 38 digits between 1e-130 and
    1e125 in magnitude."""
    if depth > MAX_METADATA_DEPTH:
        raise ValueError(f"is nested deeper than {MAX_METADATA_DEPTH} levels")
    if isinstance(value, dict):
        for item in value.values():
            _check_storable(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_storable(item, depth + 1)
    elif isinstance(value, bool):
        return
    elif isinstance(value, int) and abs(value) >= 10**38:
        raise ValueError("holds an integer of more than 38 digits")
    elif isinstance(value, float) and value != 0 and not 1e-130 < abs(value) < 1e125:
        raise ValueError("holds a number out of range (1e-130 to 1e125)")


MAX_BATCH = 100


class BatchItemRequest(NotificationRequest):
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="This item's Idempotency-Key (same semantics as the header of a single POST)",
    )


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notifications: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"1 to {MAX_BATCH} notification requests, each as for POST /api/v1/notifications, "
        "with an optional `idempotency_key`; each is validated on its own",
    )


class TextPartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=MAX_TEMPLATE_TEXT, description="Jinja2 (sandboxed)")


class EmailPartRequest(TextPartRequest):
    subject: str = Field(min_length=1, max_length=MAX_SUBJECT_LENGTH, description="Jinja2, one line")
    html: str | None = Field(default=None, max_length=100_000, description="Optional HTML (autoescaped)")


class TemplateRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": {
                        "subject": "Order {{ order_id }} shipped",
                        "text": "Hi {{ name }}, it is on its way.",
                    },
                    "sms": {"text": "Order {{ order_id }} shipped"},
                }
            ]
        },
    )
    email: EmailPartRequest | None = None
    sms: TextPartRequest | None = None
    telegram: TextPartRequest | None = None

    @model_validator(mode="after")
    def _some_part(self) -> TemplateRequest:
        if self.email is None and self.sms is None and self.telegram is None:
            raise ValueError("give at least one part: email, sms or telegram")
        return self

    def parts(self) -> dict[Channel, TemplatePart]:
        found: dict[Channel, TemplatePart] = {}
        if self.email is not None:
            found[Channel.EMAIL] = TemplatePart(self.email.text, self.email.subject, self.email.html)
        if self.sms is not None:
            found[Channel.SMS] = TemplatePart(self.sms.text)
        if self.telegram is not None:
            found[Channel.TELEGRAM] = TemplatePart(self.telegram.text)
        return found


class TemplateView(BaseModel):
    name: str
    version: int
    email: EmailPartRequest | None = None
    sms: TextPartRequest | None = None
    telegram: TextPartRequest | None = None
    created_at: str | None = None
    updated_at: str | None = None

    @classmethod
    def of(cls, template: Template) -> TemplateView:
        email = template.parts.get(Channel.EMAIL)
        sms = template.parts.get(Channel.SMS)
        telegram = template.parts.get(Channel.TELEGRAM)
        return cls(
            name=template.name,
            version=template.version,
            email=EmailPartRequest(text=email.text, subject=email.subject or "", html=email.html)
            if email
            else None,
            sms=TextPartRequest(text=sms.text) if sms else None,
            telegram=TextPartRequest(text=telegram.text) if telegram else None,
            created_at=_iso(template.created_at),
            updated_at=_iso(template.updated_at),
        )


class TemplateList(BaseModel):
    items: list[TemplateView]


class AcceptedNotification(BaseModel):
    id: str
    status: Status
    created_at: str


class AttemptView(BaseModel):
    round: int
    channel: Channel
    outcome: str = Field(
        description="sent, failed, skipped (no address, or failed permanently before), or uncertain "
        "(the worker stopped during the send; not sent again)",
        examples=["sent"],
    )
    error: str | None = None
    failure_kind: str | None = None
    provider_message_id: str | None = None
    retry_after_seconds: int | None = None
    started_at: str
    finished_at: str
    duration_ms: float = Field(description="finished_at - started_at")

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptView:
        return cls(
            round=attempt.round,
            channel=attempt.channel,
            outcome=attempt.outcome.value,
            error=attempt.error,
            failure_kind=attempt.failure_kind.value if attempt.failure_kind else None,
            provider_message_id=attempt.provider_message_id,
            retry_after_seconds=attempt.retry_after_seconds,
            started_at=isoformat(attempt.started_at),
            finished_at=isoformat(attempt.finished_at),
            duration_ms=round((attempt.finished_at - attempt.started_at).total_seconds() * 1000, 1),
        )


class ContentView(BaseModel):
    text: str
    subject: str | None = None
    html: str | None = None


class WebhookAttemptView(BaseModel):
    event_id: str
    status: str = Field(description="The status the event announced")
    attempt: int
    at: str
    delivered: bool
    status_code: int | None = None
    error: str | None = None
    duration_ms: float
    final: bool = Field(description="No further attempt for this event")

    @classmethod
    def of(cls, w: WebhookAttempt) -> WebhookAttemptView:
        return cls(
            event_id=w.event_id,
            status=w.status,
            attempt=w.attempt,
            at=isoformat(w.at),
            delivered=w.delivered,
            status_code=w.status_code,
            error=w.error,
            duration_ms=w.duration_ms,
            final=w.final,
        )


class NotificationView(BaseModel):
    id: str
    status: Status
    status_reason: str | None = Field(
        default=None, description="Why it is `failed` or `cancelled`, when it is"
    )
    channel_used: Channel | None
    provider_message_id: str | None = None
    recipient: RecipientAddresses
    channels: list[Channel]
    subject: str | None = None
    message: str = Field(description="The text as accepted (from a template: see `contents`)")
    metadata: dict[str, Any] | None = None
    rounds: int = Field(description="Rounds started so far")
    attempts: list[AttemptView]
    correlation_id: str
    routing: Routing = Routing.FALLBACK
    template: str | None = None
    template_version: int | None = None
    contents: dict[Channel, ContentView] | None = Field(
        default=None, description="Each channel's rendered content, for notifications made from a template"
    )
    send_at: str | None = None
    next_attempt_at: str | None = None
    callback_url: str | None = None
    webhooks: list[WebhookAttemptView] = Field(
        default_factory=list, description="Each attempt to tell the callback_url, oldest first"
    )
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, n: Notification) -> NotificationView:
        return cls(
            id=n.id,
            status=n.status,
            status_reason=n.status_reason,
            channel_used=n.channel_used,
            provider_message_id=n.provider_message_id,
            recipient=RecipientAddresses.model_construct(
                email=n.recipient.email,
                phone=n.recipient.phone,
                telegram_chat_id=n.recipient.telegram_chat_id,
            ),
            channels=list(n.channels),
            subject=n.subject,
            message=n.message,
            metadata=n.metadata,
            rounds=n.round,
            attempts=[AttemptView.of(a) for a in n.attempts],
            correlation_id=n.correlation_id,
            send_at=_iso(n.send_at),
            routing=n.routing,
            template=n.template,
            template_version=n.template_version,
            contents=(
                {c: ContentView(text=x.text, subject=x.subject, html=x.html) for c, x in n.contents.items()}
                if n.contents
                else None
            ),
            next_attempt_at=_iso(n.next_attempt_at),
            callback_url=n.callback_url,
            webhooks=[WebhookAttemptView.of(w) for w in n.webhooks],
            created_at=isoformat(n.created_at),
            updated_at=isoformat(n.updated_at),
        )


class NotificationPage(BaseModel):
    items: list[NotificationView]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; absent on the last page"
    )


class StatusCountsView(BaseModel):
    counts: dict[Status, int] = Field(description="Every status, with how many match the filters")
    total: int
    capped: bool = Field(
        description="Some counts are lower bounds: counting one status stops after reading 5,000 items"
    )


class LogLineView(BaseModel):
    timestamp: str
    function: str = Field(description="The function that logged it", examples=["DispatchFunction"])
    level: str
    message: str
    fields: dict[str, Any] = Field(description="The line's own fields: round, channel, outcome, error...")

    @classmethod
    def of(cls, line: LogLine) -> LogLineView:
        return cls(
            timestamp=isoformat(line.timestamp),
            function=line.function,
            level=line.level,
            message=line.message,
            fields=line.fields,
        )


class NotificationLogsView(BaseModel):
    notification_id: str
    correlation_id: str
    command: str = Field(description="The same query on the command line")
    events: list[LogLineView] = Field(description="Oldest first")


def _iso(value: datetime | None) -> str | None:
    return isoformat(value) if value else None


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending field, or `body` for the whole body")
    reason: str


class ErrorBody(BaseModel):
    error: str = Field(description="A stable machine-readable code", examples=["validation_error"])
    message: str
    details: list[FieldError] = Field(default_factory=list)


class HealthBody(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)
    latency_ms: dict[str, float] = Field(
        default_factory=dict, description="How long each dependency's check took, in milliseconds"
    )


class BatchItemResult(BaseModel):
    index: int = Field(description="Position in the request's `notifications`")
    id: str | None = None
    status: Status | None = None
    replayed: bool | None = Field(default=None, description="True when its idempotency_key was seen before")
    error: ErrorBody | None = Field(default=None, description="Why this item was not accepted")


class BatchResponse(BaseModel):
    accepted: int
    rejected: int
    items: list[BatchItemResult]
