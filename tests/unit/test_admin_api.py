"""What the admin page asks of the API: list filters (time range, search), counts by status, a
notification's log lines, and the page's own files (public, with a strict content security policy)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from notification_service.domain.api_keys import key_hash
from notification_service.domain.model import Channel, Status
from notification_service.http.auth import is_public
from notification_service.ports import LogLine
from notification_service.service.notification_logs import since_argument

from infra.lambda_runtime import LocalLambdaContext
from tests.fakes import ApiFakes
from tests.handlers import load_function_module
from tests.unit.test_api_handler import call
from tests.unit.test_lifecycle import request, stored

api = load_function_module("api")


def ids(body: dict[str, Any]) -> list[str]:
    return [item["id"] for item in body["items"]]


# --- list: time range and search ---------------------------------------------------------------------


def test_the_list_keeps_what_was_created_in_the_time_range(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    # GIVEN notifications created one second apart: n0 at 12:00:01 ... n4 at 12:00:05
    for n in range(5):
        stored(api_fakes, f"n{n}", Status.SENT)

    # WHEN the list asks for [12:00:02, 12:00:04)
    _, _, body = call(
        request(
            "GET",
            "/api/v1/notifications",
            {"created_after": "2026-11-25T12:00:02Z", "created_before": "2026-11-25T12:00:04+00:00"},
        ),
        lambda_context,
    )

    # THEN the start is included and the end is not
    assert ids(body) == ["n2", "n1"]


def test_search_matches_part_of_the_id_or_of_the_correlation_id(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    stored(api_fakes, "alpha-1", Status.SENT)  # correlation id corr-alpha-1
    stored(api_fakes, "beta-2", Status.FAILED)

    _, _, by_id = call(request("GET", "/api/v1/notifications", {"q": "beta"}), lambda_context)
    _, _, by_correlation = call(request("GET", "/api/v1/notifications", {"q": "corr-alpha"}), lambda_context)
    _, _, blank = call(request("GET", "/api/v1/notifications", {"q": "  "}), lambda_context)

    assert ids(by_id) == ["beta-2"]
    assert ids(by_correlation) == ["alpha-1"]
    assert ids(blank) == ["beta-2", "alpha-1"]  # blank search: no filter


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"created_after": "yesterday"}, "query.created_after"),
        ({"created_after": "2026-11-25T12:00:00"}, "query.created_after"),  # no offset: ambiguous
        ({"created_before": "2026-13-01T00:00:00Z"}, "query.created_before"),
        (
            {"created_after": "2026-11-25T12:00:00Z", "created_before": "2026-11-25T12:00:00Z"},
            "query.created_before",
        ),
        ({"q": "x" * 201}, "query.q"),
    ],
)
def test_bad_ranges_and_searches_are_422_naming_them(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext, query: dict[str, str], field: str
) -> None:
    for path in ("/api/v1/notifications", "/api/v1/notifications/counts"):
        status, _, body = call(request("GET", path, query), lambda_context)
        assert status == 422
        assert [d["field"] for d in body["details"]] == [field]


# --- counts ------------------------------------------------------------------------------------------


def test_counts_have_every_status_and_follow_the_filters(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    stored(api_fakes, "f1", Status.FAILED, (Channel.SMS,))
    stored(api_fakes, "f2", Status.FAILED, (Channel.EMAIL,))
    stored(api_fakes, "s1", Status.SENT, (Channel.SMS,))
    stored(api_fakes, "p1", Status.PENDING, (Channel.SMS,))

    status, _, everything = call(request("GET", "/api/v1/notifications/counts"), lambda_context)
    _, _, sms = call(request("GET", "/api/v1/notifications/counts", {"channel": "sms"}), lambda_context)
    _, _, later = call(
        request("GET", "/api/v1/notifications/counts", {"created_after": "2026-11-25T12:00:03Z"}),
        lambda_context,
    )

    assert status == 200
    assert set(everything["counts"]) == {s.value for s in Status} and everything["capped"] is False
    assert (everything["counts"]["failed"], everything["counts"]["sent"], everything["total"]) == (2, 1, 4)
    assert (sms["counts"]["failed"], sms["counts"]["pending"], sms["total"]) == (1, 1, 3)
    assert (later["counts"]["sent"], later["counts"]["pending"], later["total"]) == (1, 1, 2)


def test_counts_are_only_the_callers_own(api_fakes: ApiFakes, lambda_context: LocalLambdaContext) -> None:
    stored(api_fakes, "mine", Status.FAILED)
    api.dependencies.set(
        dataclasses.replace(
            api.dependencies.get(),
            settings=api_fakes.settings.model_copy(update={"api_keys": f"other:{key_hash('k-other')}"}),
        )
    )
    event = request("GET", "/api/v1/notifications/counts")
    event["headers"]["X-API-Key"] = "k-other"

    _, _, body = call(event, lambda_context)

    assert body["total"] == 0


# --- log lines ---------------------------------------------------------------------------------------


class RecordedLogLines:
    def __init__(self, lines: list[LogLine]) -> None:
        self.lines = lines
        self.asked: list[tuple[str, str, datetime]] = []

    def for_notification(self, notification_id: str, correlation_id: str, since: datetime) -> list[LogLine]:
        self.asked.append((notification_id, correlation_id, since))
        return self.lines


def test_log_lines_are_the_notifications_own_query(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    # GIVEN a stored notification (created 12:00:01, correlation id corr-n1) and a log source
    stored(api_fakes, "n1", Status.FAILED)
    line = LogLine(
        timestamp=datetime(2026, 11, 25, 12, 0, 2, 500000, tzinfo=UTC),
        function="DispatchFunction",
        level="WARNING",
        message="round failed",
        fields={"round": 1, "channel": "email", "outcome": "failed"},
    )
    source = RecordedLogLines([line])
    api.dependencies.set(dataclasses.replace(api.dependencies.get(), log_lines=source))

    # WHEN its log lines are asked for
    status, _, body = call(request("GET", "/api/v1/notifications/n1/logs"), lambda_context)

    # THEN they are the lines of its correlation id from a minute before it was created, with the
    # command that asks the same
    assert status == 200
    assert source.asked == [("n1", "corr-n1", datetime(2026, 11, 25, 11, 59, 1, tzinfo=UTC))]
    assert body["correlation_id"] == "corr-n1"
    assert body["command"].startswith("notifyctl logs --correlation-id corr-n1 --notification-id n1 --since ")
    assert body["events"] == [
        {
            "timestamp": "2026-11-25T12:00:02.500Z",
            "function": "DispatchFunction",
            "level": "WARNING",
            "message": "round failed",
            "fields": {"round": 1, "channel": "email", "outcome": "failed"},
        }
    ]


def test_another_keys_notification_has_no_log_lines_for_this_key(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    stored(api_fakes, "n1", Status.SENT)  # the anonymous caller's
    source = RecordedLogLines([])
    api.dependencies.set(
        dataclasses.replace(
            api.dependencies.get(),
            log_lines=source,
            settings=api_fakes.settings.model_copy(update={"api_keys": f"other:{key_hash('k-other')}"}),
        )
    )
    event = request("GET", "/api/v1/notifications/n1/logs")
    event["headers"]["X-API-Key"] = "k-other"

    status, _, _ = call(event, lambda_context)

    assert (status, source.asked) == (404, [])


def test_log_lines_of_an_unknown_or_unconfigured_notification(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    stored(api_fakes, "n1", Status.SENT)

    unknown, _, _ = call(request("GET", "/api/v1/notifications/nope/logs"), lambda_context)
    unconfigured, headers, body = call(request("GET", "/api/v1/notifications/n1/logs"), lambda_context)

    assert unknown == 404
    assert (unconfigured, body["error"]) == (503, "service_unavailable")
    assert "Retry-After" in headers


@pytest.mark.parametrize(
    ("span", "argument"),
    [
        (timedelta(seconds=0.2), "1s"),
        (timedelta(seconds=59), "59s"),
        (timedelta(seconds=61), "2m"),
        (timedelta(minutes=59), "59m"),
        (timedelta(minutes=61), "2h"),
        (timedelta(hours=59), "59h"),
        (timedelta(hours=60), "3d"),
    ],
)
def test_since_reaches_back_at_least_the_span(span: timedelta, argument: str) -> None:
    assert since_argument(span) == argument


# --- the page's files --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type", "contains"),
    [
        ("/admin", "text/html; charset=utf-8", 'src="admin/admin.js"'),
        ("/admin/admin.js", "text/javascript; charset=utf-8", "sessionStorage"),
        ("/admin/admin.css", "text/css; charset=utf-8", "@media"),
    ],
)
def test_the_admin_files_are_public_and_locked_down(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext, path: str, content_type: str, contains: str
) -> None:
    # GIVEN an API that asks for keys
    api.dependencies.set(
        dataclasses.replace(
            api.dependencies.get(),
            settings=api_fakes.settings.model_copy(update={"api_keys": f"ops:{key_hash('k-ops')}"}),
        )
    )

    # WHEN a browser asks for the page or one of its files without a key
    result = api.lambda_handler(request("GET", path), lambda_context)

    # THEN it gets it, with a policy that lets only the page's own files run
    headers = result["multiValueHeaders"]
    assert result["statusCode"] == 200
    assert headers["Content-Type"] == [content_type]
    assert contains in result["body"]
    policy = headers["Content-Security-Policy"][0]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert headers["X-Content-Type-Options"] == ["nosniff"]


def test_the_page_with_a_slash_redirects_to_the_page_without(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    result = api.lambda_handler(request("GET", "/admin/"), lambda_context)
    assert (result["statusCode"], result["multiValueHeaders"]["Location"]) == (308, ["../admin"])


@pytest.mark.parametrize(
    ("keys", "local", "required"), [(True, True, True), (False, True, False), (False, False, True)]
)
def test_the_page_is_told_whether_to_ask_for_a_key_first(
    api_fakes: ApiFakes,
    lambda_context: LocalLambdaContext,
    keys: bool,
    local: bool,
    required: bool,
) -> None:
    # GIVEN API_KEYS or none, on a local stack (AWS_SAM_LOCAL) or deployed behind API Gateway
    entries = f"ops:{key_hash('k-ops')}" if keys else ""
    settings = api_fakes.settings.model_copy(update={"api_keys": entries, "aws_sam_local": local})
    api.dependencies.set(dataclasses.replace(api.dependencies.get(), settings=settings))

    # WHEN the page asks, without a key
    status, headers, body = call(request("GET", "/admin/config.json"), lambda_context)

    # THEN keys are asked for unless a local stack runs without them
    assert (status, body) == (200, {"api_key_required": required})
    assert "Content-Security-Policy" in headers


@pytest.mark.parametrize(
    ("path", "public"),
    [
        ("/admin", True),
        ("/admin/admin.js", True),
        ("/admin/config.json", True),
        ("/admin/../api/v1/notifications", False),
        ("/admin/x/y.js", False),
        ("/admin/", True),  # the redirect to /admin
    ],
)
def test_only_the_admin_pages_own_files_are_public(path: str, public: bool) -> None:
    assert is_public(path) is public


def test_other_admin_paths_are_404_and_the_api_still_asks_for_a_key(
    api_fakes: ApiFakes, lambda_context: LocalLambdaContext
) -> None:
    api.dependencies.set(
        dataclasses.replace(
            api.dependencies.get(),
            settings=api_fakes.settings.model_copy(update={"api_keys": f"ops:{key_hash('k-ops')}"}),
        )
    )

    unknown, _, body = call(request("GET", "/admin/secrets.txt"), lambda_context)
    page_again, _, _ = call(request("GET", "/admin/index.html"), lambda_context)
    climbing, _, _ = call(request("GET", "/admin/..%2Fapp.py"), lambda_context)
    api_call, _, _ = call(request("GET", "/api/v1/notifications/counts"), lambda_context)

    assert (unknown, body["error"], page_again) == (404, "not_found", 404)
    assert climbing == 401  # not one of the page's files: it needs a key like any other path
    assert api_call == 401
