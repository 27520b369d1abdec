"""Templates: stored checked and versioned, rendered with strict variables in a sandbox when a
notification is accepted, and sent as each channel's own content."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from notification_service.domain.model import Channel, Content
from notification_service.domain.recipient import Recipient
from notification_service.domain.retry_policy import RetryPolicy
from notification_service.domain.template import Template, TemplatePart, TemplateProblem
from notification_service.http.schemas import NotificationRequest
from notification_service.ports import DeliveryMessage, Provider
from notification_service.service.dispatch import DispatchService
from notification_service.service.notifications import NewNotification, NotificationService
from notification_service.templating import check, render
from pydantic import ValidationError

from infra.lambda_runtime import LocalLambdaContext
from tests.conftest import load_event
from tests.fakes import ApiFakes, FakeProvider, transient
from tests.unit.test_api_handler import call, post

SHIPPED = {
    "email": {
        "subject": "Order {{ order_id }} shipped",
        "text": "Hi {{ name }}, order {{ order_id }} is on its way.",
        "html": "<p>Hi {{ name }}</p>",
    },
    "sms": {"text": "Order {{ order_id }} shipped"},
}


def route(method: str, path: str, body: Any = None) -> dict[str, Any]:
    event = load_event("api_post_notification.json")
    event["httpMethod"] = method
    event["path"] = path
    event["pathParameters"] = {"proxy": path.lstrip("/")}
    event["body"] = json.dumps(body) if body is not None else None
    return event


# --- rendering --------------------------------------------------------------------------------------


def template(**parts: TemplatePart) -> Template:
    return Template("t", {Channel(k): v for k, v in parts.items()}, version=3)


def test_each_channel_gets_its_own_rendered_content() -> None:
    rendered = render(
        template(
            email=TemplatePart("Hi {{ name }}", "Re: {{ topic }}", "<b>{{ name }}</b>"),
            sms=TemplatePart("{{ name }}!"),
        ),
        [Channel.SMS, Channel.EMAIL],
        {"name": "<Ann>", "topic": "tea"},
    )

    assert (rendered.template, rendered.version) == ("t", 3)
    assert rendered.contents == {
        Channel.SMS: Content("<Ann>!"),
        Channel.EMAIL: Content("Hi <Ann>", "Re: tea", "<b>&lt;Ann&gt;</b>"),  # HTML autoescaped, text not
    }


@pytest.mark.parametrize(
    ("parts", "variables", "field", "reason"),
    [
        ({"sms": TemplatePart("Hi {{ name }}")}, {}, "variables.name", "missing"),
        ({"sms": TemplatePart("{{ user.name }}")}, {"user": {}}, "variables", "has no attribute 'name'"),
        ({"sms": TemplatePart("{{ x.__class__.__mro__ }}")}, {"x": 1}, "template", "unsafe"),
        ({"sms": TemplatePart("{{ a + b }}")}, {"a": "x", "b": 1}, "variables", "TypeError"),
        ({"sms": TemplatePart("{{ x }}")}, {"x": "y" * 1601}, "variables", "1601 characters"),
        ({"sms": TemplatePart("{{ x }}")}, {"x": "  "}, "variables", "blank"),
        ({"email": TemplatePart("x", "s")}, {}, "channels", "has parts for email, none of sms"),
    ],
)
def test_a_template_that_does_not_render_names_what_to_fix(
    parts: dict[str, TemplatePart], variables: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(TemplateProblem) as problem:
        render(template(**parts), [Channel.SMS], variables)
    assert problem.value.field == field
    assert reason in problem.value.reason


def test_channels_without_a_part_are_left_out_and_skipped_at_delivery() -> None:
    rendered = render(template(sms=TemplatePart("hi")), [Channel.EMAIL, Channel.SMS], {})
    assert set(rendered.contents) == {Channel.SMS}


def test_a_part_that_does_not_parse_is_named_with_its_line() -> None:
    with pytest.raises(TemplateProblem) as problem:
        check({Channel.EMAIL: TemplatePart("fine", "Order {{ id ", None)})
    assert problem.value.field == "email.subject"
    assert "line 1" in problem.value.reason


def test_dispatch_sends_each_channel_its_rendered_content() -> None:
    # GIVEN a notification rendered from a template, email failing so that sms is tried too
    fakes = ApiFakes()
    parts = {
        Channel.EMAIL: TemplatePart("Mail {{ n }}", "Subj {{ n }}", "<i>{{ n }}</i>"),
        Channel.SMS: TemplatePart("SMS {{ n }}"),
    }
    rendered = render(Template("x", parts), [Channel.EMAIL, Channel.SMS], {"n": 7})
    new = NewNotification(
        Recipient(email="a@example.com", phone="+447911123456"),
        "Mail 7",
        (Channel.EMAIL, Channel.SMS),
        rendered=rendered,
    )
    receipt = NotificationService(fakes.repository, fakes.queue, fakes.idempotency, fakes.clock).accept(
        new, "c"
    )
    email, sms = FakeProvider(Channel.EMAIL, [transient()]), FakeProvider(Channel.SMS)
    providers: dict[Channel, Provider] = {Channel.EMAIL: email, Channel.SMS: sms}
    service = DispatchService(
        fakes.repository, fakes.queue, providers, RetryPolicy(3, 2), fakes.clock, "w", timedelta(seconds=60)
    )

    asyncio.run(service.dispatch(DeliveryMessage(receipt.id, 1, "c")))

    # THEN each provider got its channel's content
    (mail,) = email.sent
    (text,) = sms.sent
    assert (mail.body, mail.subject, mail.html) == ("Mail 7", "Subj 7", "<i>7</i>")
    assert (text.body, text.subject, text.html) == ("SMS 7", None, None)


def test_a_channel_without_a_template_part_is_skipped_and_the_next_one_sends() -> None:
    fakes = ApiFakes()
    rendered = render(
        Template("x", {Channel.SMS: TemplatePart("SMS only")}), [Channel.EMAIL, Channel.SMS], {}
    )
    new = NewNotification(
        Recipient(email="a@example.com", phone="+447911123456"),
        "SMS only",
        (Channel.EMAIL, Channel.SMS),
        rendered=rendered,
    )
    receipt = NotificationService(fakes.repository, fakes.queue, fakes.idempotency, fakes.clock).accept(
        new, "c"
    )
    email, sms = FakeProvider(Channel.EMAIL), FakeProvider(Channel.SMS)
    providers: dict[Channel, Provider] = {Channel.EMAIL: email, Channel.SMS: sms}
    service = DispatchService(
        fakes.repository, fakes.queue, providers, RetryPolicy(3, 2), fakes.clock, "w", timedelta(seconds=60)
    )

    asyncio.run(service.dispatch(DeliveryMessage(receipt.id, 1, "c")))

    record = fakes.repository.get(receipt.id)
    assert [(a.channel.value, a.outcome.value, a.error) for a in record.attempts] == [
        ("email", "skipped", "the template has no part for this channel"),
        ("sms", "sent", None),
    ]
    assert email.sent == []


# --- the API ----------------------------------------------------------------------------------------


def test_templates_are_stored_versioned_listed_and_deleted(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    status, _, first = call(route("PUT", "/api/v1/templates/shipped", SHIPPED), lambda_context)
    _, _, second = call(
        route("PUT", "/api/v1/templates/shipped", {"telegram": {"text": "{{ x }}"}}), lambda_context
    )
    call(route("PUT", "/api/v1/templates/another", {"sms": {"text": "x"}}), lambda_context)

    assert (status, first["version"], second["version"]) == (200, 1, 2)
    assert first["email"]["subject"] == "Order {{ order_id }} shipped"
    _, _, got = call(route("GET", "/api/v1/templates/shipped"), lambda_context)
    assert (got["telegram"], got["email"]) == ({"text": "{{ x }}"}, None)
    _, _, listed = call(route("GET", "/api/v1/templates"), lambda_context)
    assert [t["name"] for t in listed["items"]] == ["another", "shipped"]
    status, _, _ = call(route("DELETE", "/api/v1/templates/shipped"), lambda_context)
    assert status == 204
    assert call(route("GET", "/api/v1/templates/shipped"), lambda_context)[0] == 404
    assert call(route("DELETE", "/api/v1/templates/shipped"), lambda_context)[0] == 404


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/templates/bad name", {"sms": {"text": "x"}}, "path.name"),
        ("/api/v1/templates/t", {}, "body"),
        ("/api/v1/templates/t", {"sms": {"text": "{% if %}"}}, "sms.text"),
        ("/api/v1/templates/t", {"email": {"text": "x"}}, "email.subject"),
        ("/api/v1/templates/t", {"fax": {"text": "x"}}, "fax"),
    ],
)
def test_a_bad_template_is_422_naming_the_field(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext, path: str, body: dict[str, Any], field: str
) -> None:
    status, _, answer = call(route("PUT", path, body), lambda_context)
    assert status == 422
    assert field in [d["field"] for d in answer["details"]]
    assert api_fakes.templates.templates == {}


def test_a_notification_from_a_template_carries_each_channels_content(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    call(route("PUT", "/api/v1/templates/shipped", SHIPPED), lambda_context)
    request = {
        "recipient": {"email": "ann@example.com", "phone": "+447911123456"},
        "channels": ["sms", "email"],
        "template": "shipped",
        "variables": {"name": "Ann", "order_id": 42},
    }

    status, _, accepted = call(post(request), lambda_context)

    assert status == 202
    stored = api_fakes.repository.items[accepted["id"]]
    assert (stored.template, stored.template_version, stored.message) == ("shipped", 1, "Order 42 shipped")
    assert stored.contents is not None
    assert stored.contents[Channel.EMAIL] == Content(
        "Hi Ann, order 42 is on its way.", "Order 42 shipped", "<p>Hi Ann</p>"
    )
    _, _, view = call(route("GET", f"/api/v1/notifications/{accepted['id']}"), lambda_context)
    assert view["contents"]["sms"] == {"text": "Order 42 shipped", "subject": None, "html": None}


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        ({"template": "shipped", "variables": {"name": "Ann"}}, "variables.order_id"),
        ({"template": "nope", "variables": {}}, "template"),
        ({"template": "shipped", "message": "both"}, "message"),
        ({"variables": {"a": 1}, "message": "hi"}, "variables"),
    ],
)
def test_a_template_problem_is_422_naming_it_and_stores_nothing(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext, request_body: dict[str, Any], field: str
) -> None:
    call(route("PUT", "/api/v1/templates/shipped", SHIPPED), lambda_context)

    status, _, answer = call(
        post({"recipient": "ann@example.com", "channels": ["email"], **request_body}), lambda_context
    )

    assert status == 422
    assert field in [d["field"] for d in answer["details"]]
    assert api_fakes.repository.items == {}


def test_variables_are_bounded() -> None:
    with pytest.raises(ValidationError) as invalid:
        NotificationRequest.model_validate(
            {"recipient": "a@example.com", "template": "t", "variables": {"x": "y" * 20_000}}
        )
    assert [e["loc"] for e in invalid.value.errors()] == [("variables",)]


def test_a_batch_item_with_a_template_problem_is_rejected_alone(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    call(route("PUT", "/api/v1/templates/shipped", SHIPPED), lambda_context)
    items = [
        {"recipient": "ann@example.com", "channels": ["sms"], "template": "shipped", "variables": {}},
        {
            "recipient": "+447911123456",
            "channels": ["sms"],
            "template": "shipped",
            "variables": {"order_id": 1},
        },
    ]

    status, _, body = call(
        route("POST", "/api/v1/notifications/batch", {"notifications": items}), lambda_context
    )

    assert (status, body["accepted"]) == (207, 1)
    assert body["items"][0]["error"]["details"][0]["field"] == "variables.order_id"
