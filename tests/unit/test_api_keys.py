"""API keys: parsing API_KEYS, identifying a caller, and the handler's 401 / ownership answers."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import pytest
from notification_service.domain.api_keys import (
    ANONYMOUS,
    InvalidApiKeyEntry,
    identify,
    key_hash,
    new_key,
    parse_entries,
)
from notification_service.domain.rate_limit import RateDecision
from notification_service.errors import ConfigurationError, DependencyUnavailable
from notification_service.http.auth import Unauthorized, caller_of, is_public
from notification_service.service.notifications import notification_id_for_key
from notification_service.settings import Settings, load_settings

from infra.lambda_runtime import LocalLambdaContext
from tests.conftest import load_event
from tests.fakes import ApiFakes
from tests.handlers import load_function_module

api = load_function_module("api")
ALICE_KEY, ALICE_ENTRY = new_key("alice")
BOB_KEY, BOB_ENTRY = new_key("bob")


def test_new_key_prints_an_entry_that_identifies_it() -> None:
    entries = parse_entries(f"{ALICE_ENTRY}, {BOB_ENTRY}")
    assert [e.name for e in entries] == ["alice", "bob"]
    assert ALICE_KEY.startswith("nsk_") and ALICE_KEY not in ALICE_ENTRY
    assert f"alice:{key_hash(ALICE_KEY)}" == ALICE_ENTRY
    assert identify(entries, ALICE_KEY) == "alice"
    assert identify(entries, BOB_KEY) == "bob"
    assert identify(entries, ALICE_KEY + "x") is None
    assert identify(entries, "") is None and identify(entries, None) is None
    assert new_key("alice")[0] != ALICE_KEY  # random every time


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("alice", "name:sha256hex"),
        ("al ice:" + "a" * 64, "name:sha256hex"),
        ("alice:" + "a" * 63, "not the key itself"),
        ("alice:nsk_plainkey", "not the key itself"),
        (f"alice:{'a' * 64},alice:{'b' * 64}", "appears twice"),
    ],
)
def test_bad_entries_are_refused_naming_the_entry_not_its_value(value: str, says: str) -> None:
    with pytest.raises(InvalidApiKeyEntry) as caught:
        parse_entries(value)
    assert says in str(caught.value)
    assert "nsk_plainkey" not in str(caught.value)


def test_api_keys_setting_is_validated_at_cold_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLE_NAME", "t")
    monkeypatch.setenv("QUEUE_URL", "q")
    monkeypatch.setenv("API_KEYS", "alice:notahash")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert "API_KEYS" in str(caught.value)
    assert Settings(table_name="t", queue_url="q", api_keys=ALICE_ENTRY).api_key_entries[0].name == "alice"
    assert parse_entries("") == ()


def test_public_paths_and_the_gateway_key_id() -> None:
    entries = parse_entries(ALICE_ENTRY)
    assert all(is_public(p) for p in ["/health", "/ready/", "/docs", "/openapi.json", "/api/v1/providers/x"])
    assert not is_public("/api/v1/notifications")
    assert caller_of({"path": "/health"}, entries) == ANONYMOUS
    assert caller_of({"path": "/api/v1/notifications", "headers": {}}, entries) == Unauthorized("missing")
    keyed = {"path": "/api/v1/notifications", "headers": {"x-api-key": f" {ALICE_KEY} "}}
    assert caller_of(keyed, entries) == "alice"
    # no API_KEYS: behind API Gateway the key id is the caller; elsewhere auth is off
    behind_gateway = {"path": "/api/v1/notifications", "requestContext": {"identity": {"apiKeyId": "k1x"}}}
    assert caller_of(behind_gateway, ()) == "k1x"
    assert caller_of({"path": "/api/v1/notifications"}, ()) == ANONYMOUS


def test_idempotency_keys_are_scoped_per_owner() -> None:
    assert notification_id_for_key("k", "alice") != notification_id_for_key("k", "bob")
    assert notification_id_for_key("k") == notification_id_for_key("k", ANONYMOUS)


# -- the handler ------------------------------------------------------------------------------------
@pytest.fixture
def keyed(api_fakes: ApiFakes) -> ApiFakes:
    settings = api_fakes.settings.model_copy(update={"api_keys": f"{ALICE_ENTRY},{BOB_ENTRY}"})
    api.dependencies.set(dataclasses.replace(api.dependencies.get(), settings=settings))
    return api_fakes


def call(
    context: LocalLambdaContext, method: str, path: str, key: str | None, body: Any = None
) -> tuple[int, dict[str, list[str]], Any]:
    event = load_event("api_post_notification.json")
    event.update(httpMethod=method, path=path, body=json.dumps(body) if body is not None else None)
    event["headers"] = {k: v for k, v in event["headers"].items() if k.lower() != "idempotency-key"}
    if key is not None:
        event["headers"]["X-API-Key"] = key
    event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
    result = api.lambda_handler(event, context)
    answer = json.loads(result["body"]) if result.get("body") else None
    return result["statusCode"], result["multiValueHeaders"], answer


BODY = {"recipient": {"email": "user@example.com"}, "message": "hi", "channels": ["email"]}


@pytest.mark.parametrize("key", [None, "", "nsk_wrong"])
def test_a_request_without_a_valid_key_is_401_naming_the_header(
    keyed: ApiFakes, lambda_context: LocalLambdaContext, key: str | None
) -> None:
    status, headers, body = call(lambda_context, "POST", "/api/v1/notifications", key, BODY)
    assert status == 401
    assert body["error"] == "unauthorized"
    assert body["details"][0]["field"] == "header.X-API-Key"
    assert headers["WWW-Authenticate"] == ['ApiKey header="X-API-Key"']
    assert keyed.repository.items == {}  # nothing stored


def test_health_and_docs_need_no_key(keyed: ApiFakes, lambda_context: LocalLambdaContext) -> None:
    assert call(lambda_context, "GET", "/health", None)[0] == 200
    assert call(lambda_context, "GET", "/openapi.json", None)[0] == 200


def test_a_notification_belongs_to_the_key_that_created_it(
    keyed: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    # GIVEN alice's notification
    status, _, accepted = call(lambda_context, "POST", "/api/v1/notifications", ALICE_KEY, BODY)
    assert status == 202
    path = f"/api/v1/notifications/{accepted['id']}"
    assert keyed.repository.items[accepted["id"]].owner == "alice"
    # THEN bob can neither see, list, cancel nor retry it: it does not exist for him
    for method, where in [("GET", path), ("POST", f"{path}/cancel"), ("POST", f"{path}/retry")]:
        status, _, body = call(lambda_context, method, where, BOB_KEY)
        assert (status, body["error"]) == (404, "not_found"), where
    assert call(lambda_context, "GET", "/api/v1/notifications", BOB_KEY)[2]["items"] == []
    # AND alice sees and cancels it
    assert call(lambda_context, "GET", path, ALICE_KEY)[0] == 200
    listed = call(lambda_context, "GET", "/api/v1/notifications", ALICE_KEY)[2]["items"]
    assert [n["id"] for n in listed] == [accepted["id"]]
    assert call(lambda_context, "POST", f"{path}/cancel", ALICE_KEY)[2]["status"] == "cancelled"


def test_the_schema_declares_the_key_on_api_routes_only(
    keyed: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    _, _, schema = call(lambda_context, "GET", "/openapi.json", None)
    assert schema["components"]["securitySchemes"]["apiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
    }
    assert schema["paths"]["/api/v1/notifications"]["post"]["security"] == [{"apiKey": []}]
    assert "401" in schema["paths"]["/api/v1/notifications"]["post"]["responses"]
    assert "security" not in schema["paths"]["/health"]["get"]


# -- rate limits in the handler ---------------------------------------------------------------------
class FakeLimiter:
    def __init__(self, decision: RateDecision | None) -> None:
        self.decision = decision  # None: the cache is down
        self.calls: list[tuple[str, list[str], int | None]] = []

    def acquire(
        self, api_key: str, recipients: Sequence[str], now_ms: int | None = None, *, cost: int | None = None
    ) -> RateDecision:
        self.calls.append((api_key, list(recipients), cost))
        if self.decision is None:
            raise DependencyUnavailable("redis", "ConnectionError")
        return self.decision


def limited(api_fakes: ApiFakes, decision: RateDecision | None) -> FakeLimiter:
    limiter = FakeLimiter(decision)
    api.dependencies.set(dataclasses.replace(api.dependencies.get(), rate_limiter=limiter))
    return limiter


def test_an_allowed_post_carries_the_ratelimit_headers_and_is_counted_per_address(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    limiter = limited(api_fakes, RateDecision.allow(limit=100, remaining=99, reset_ms=20))
    body = {"recipient": {"email": "a@example.com", "phone": "+447911123456"}, "message": "m"}
    status, headers, _ = call(lambda_context, "POST", "/api/v1/notifications", None, body)
    assert status == 202
    assert headers["RateLimit-Limit"] == ["100"] and headers["RateLimit-Remaining"] == ["99"]
    assert limiter.calls == [(ANONYMOUS, ["email:a@example.com", "phone:+447911123456"], 1)]


def test_a_refused_post_is_429_with_retry_after_and_nothing_stored(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    limited(api_fakes, RateDecision.refuse("recipient", 60, 0, reset_ms=1_800_000, retry_after_ms=1_799_001))
    status, headers, body = call(lambda_context, "POST", "/api/v1/notifications", None, BODY)
    assert status == 429
    assert body["error"] == "rate_limited"
    assert body["details"] == [{"field": "recipient", "reason": "more than 60 allowed"}]
    assert headers["Retry-After"] == ["1800"]
    assert api_fakes.repository.items == {}


def test_a_batch_costs_one_token_per_valid_item_and_is_refused_whole(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    limiter = limited(api_fakes, RateDecision.refuse("api_key", 3, 1, reset_ms=2000, retry_after_ms=1000))
    batch = {"notifications": [BODY, BODY, {"recipient": "not an address"}]}
    status, headers, _ = call(lambda_context, "POST", "/api/v1/notifications/batch", None, batch)
    assert status == 429
    assert headers["Retry-After"] == ["1"]
    assert limiter.calls[0][2] == 2
    assert api_fakes.repository.items == {}


def test_the_cache_being_down_lets_requests_through(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    limited(api_fakes, None)
    status, headers, _ = call(lambda_context, "POST", "/api/v1/notifications", None, BODY)
    assert status == 202
    assert "RateLimit-Limit" not in headers
