"""The admin page (/admin) in headless Chromium (Debian's package, driven by Playwright) against the
local stack with the real providers and their local peers: the key prompt, the list and its filters,
a failed notification's detail, retry and cancel from the page, the log lines, the send form, a
phone-width layout, and no console errors anywhere.

Screenshots land in ADMIN_SCREENSHOTS (default artifacts/admin-page/ in the checkout), which CI keeps.
Waits are Playwright's: each polls the page until it holds (the timeouts only guard against a hang).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.conftest import KEY, ROOT, RunningStack

SHOTS = Path(os.environ.get("ADMIN_SCREENSHOTS", ROOT / "artifacts" / "admin-page"))
# As root in a sandbox without the internet: no sandbox, no GPU, no background network calls.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DELIVERY_TIMEOUT_MS = 60_000  # a hang guard for a round through the queue, not a timing claim


def chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        found = candidate and shutil.which(candidate)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium()
    if executable is None:
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail("REQUIRE_BROWSER is set but no chromium is installed (make browser)")
        pytest.skip("no chromium (make browser installs Debian's)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def console() -> list[str]:
    """The console errors and uncaught exceptions of the test's tab: none, unless a test provokes one."""
    return []


@pytest.fixture
def page(browser: Browser, console: list[str]) -> Iterator[Page]:
    """A fresh browser tab (empty session storage) that fails the test on any console error."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    watch(opened, console)
    yield opened
    context.close()
    assert console == [], console


def watch(page: Page, console: list[str]) -> None:
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda error: console.append(f"page error: {error}"))


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # the sticky header stays on top of a full-page picture
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


# axe-core's WCAG 2.1 A and AA rules (labels, names, contrast, landmarks, ARIA use, ...)
WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


def accessibility_problems(page: Page) -> list[str]:
    """What axe-core (bundled by axe-playwright-python, run in the page) finds against WCAG 2.1 AA."""
    found = Axe().run(page, options=WCAG).response["violations"]
    return [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}" for v in found]


def sign_in(page: Page, stack: RunningStack) -> None:
    """Open the page; it asks for the key (this stack asks for keys) and keeps it for the session."""
    page.goto(f"{stack.base_url}/admin")
    key_field = page.get_by_label("API key", exact=True)
    expect(key_field).to_be_visible()
    key_field.fill(KEY)
    page.get_by_role("button", name="Use this key").click()
    expect(key_field).to_be_hidden()


def test_an_operator_finds_a_failed_notification_and_retries_it(
    page: Page, sinks_stack: RunningStack
) -> None:
    # GIVEN a notification whose only channel failed (the mailbox was full) and one that was sent,
    # with correlation ids of this test's own (the stack is shared: the search keeps the list to them)
    mark = f"admin-{uuid.uuid4().hex[:8]}"
    failing = sinks_stack.post(
        {
            "recipient": {"email": f"fullbox-{mark}@example.com"},
            "channels": ["email"],
            "subject": "Your invoice",
            "message": f"Invoice {mark} is ready",
        },
        headers={"X-Correlation-ID": f"{mark}-invoice"},
    ).json()["id"]
    delivered = sinks_stack.post(
        {"recipient": {"email": f"ok-{mark}@example.com"}, "channels": ["email"], "message": "Hello"},
        headers={"X-Correlation-ID": f"{mark}-hello"},
    ).json()["id"]
    assert sinks_stack.wait_terminal(failing)["status"] == "failed"
    assert sinks_stack.wait_terminal(delivered)["status"] == "sent"

    # WHEN an operator opens the page with the key and searches for them
    sign_in(page, sinks_stack)
    expect(page.get_by_role("heading", name="Notifications")).to_be_visible()
    search = page.get_by_label("Search id or correlation id")
    search.fill(mark)
    search.press("Enter")

    # THEN both are listed, and the counts are theirs: one sent, one failed
    expect(page.locator("tr[data-id]")).to_have_count(2)
    expect(page.get_by_role("button", name="failed: 1", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="sent: 1", exact=True)).to_be_visible()

    # WHEN it filters the list to failed
    page.get_by_label("Status", exact=True).select_option("failed")

    # THEN the list holds the failed one only
    expect(page).to_have_url(re.compile(r"status=failed"))
    row = page.locator(f'tr[data-id="{failing}"]')
    expect(page.locator("tr[data-id]")).to_have_count(1)
    expect(row).to_contain_text("failed")
    assert accessibility_problems(page) == []
    shot(page, "list-failed")

    # WHEN it opens the failed one
    row.get_by_role("link", name=failing).click()

    # THEN the detail shows why: the attempt timeline, the message, the correlation id
    expect(page.get_by_test_id("status")).to_have_text("failed")
    attempts = page.get_by_test_id("attempts")
    expect(attempts).to_contain_text("email")
    expect(attempts).to_contain_text("recipient refused (552)")
    expect(page.get_by_text(f"Invoice {mark} is ready")).to_be_visible()
    record = sinks_stack.request("GET", f"/api/v1/notifications/{failing}").json()
    expect(page.get_by_test_id("correlation-id")).to_have_text(record["correlation_id"])
    expect(page.get_by_role("button", name="Cancel", exact=True)).to_be_disabled()

    # AND its log lines are the ones `notifyctl logs --correlation-id` finds
    page.get_by_role("button", name="Show log lines").click()
    log_lines = page.get_by_test_id("log-lines")
    expect(log_lines).to_contain_text("DispatchFunction")
    expect(log_lines).to_contain_text("round finished")
    expect(page.get_by_text(f"notifyctl logs --correlation-id {record['correlation_id']}")).to_be_visible()
    assert accessibility_problems(page) == []
    shot(page, "detail-failed")

    # WHEN it retries it from the page
    page.get_by_role("button", name="Retry", exact=True).click()

    # THEN the page says so and follows it until it is sent (the mailbox has room now)
    expect(page.get_by_test_id("action-result")).to_contain_text("Retry")
    expect(page.get_by_test_id("status")).to_have_text("sent", timeout=DELIVERY_TIMEOUT_MS)
    expect(page.get_by_test_id("attempts")).to_contain_text("sent")
    expect(page.get_by_role("button", name="Retry", exact=True)).to_be_disabled()
    shot(page, "detail-retried")
    assert sinks_stack.request("GET", f"/api/v1/notifications/{failing}").json()["status"] == "sent"


def test_an_operator_sends_a_scheduled_test_notification_and_cancels_it(
    page: Page, console: list[str], sinks_stack: RunningStack
) -> None:
    # GIVEN the send form
    sign_in(page, sinks_stack)
    page.get_by_role("link", name="Send test").click()
    expect(page.get_by_role("heading", name="Send a test notification")).to_be_visible()

    # WHEN a bad phone number is sent
    phone = page.get_by_label("Phone", exact=True)
    phone.fill("12345")
    page.get_by_label("Message", exact=True).fill("Maintenance tonight")
    with page.expect_console_message(lambda m: m.type == "error") as refused:
        page.get_by_role("button", name="Send", exact=True).click()

    # THEN the form marks the field and says why (the browser logs the 422 answer, nothing else)
    expect(phone).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#err-phone")).to_be_visible()
    assert accessibility_problems(page) == []
    assert "422" in refused.value.text
    expected_error = f"error: {refused.value.text}"

    # WHEN a valid one is scheduled a day ahead
    mark = uuid.uuid4().hex[:8]
    phone.fill("")
    page.get_by_label("Email", exact=True).fill(f"ops-{mark}@example.com")
    later = (datetime.now(UTC) + timedelta(days=1)).astimezone()
    page.get_by_label("Send at (optional)").fill(later.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Send", exact=True).click()

    # THEN it is accepted as scheduled, with a link to it
    result = page.get_by_test_id("send-result")
    expect(result).to_contain_text("scheduled")
    shot(page, "send-form")
    result.get_by_role("link").click()

    # WHEN it is cancelled from its detail (after the in-page confirmation)
    expect(page.get_by_test_id("status")).to_have_text("scheduled")
    expect(page.get_by_role("button", name="Retry", exact=True)).to_be_disabled()
    page.get_by_role("button", name="Cancel", exact=True).click()
    page.get_by_role("button", name="Yes, cancel it").click()

    # THEN it is cancelled, the page and the API agree
    expect(page.get_by_test_id("action-result")).to_contain_text("Cancelled")
    expect(page.get_by_test_id("status")).to_have_text("cancelled")
    notification_id = page.url.rsplit("/", 1)[-1]
    assert sinks_stack.request("GET", f"/api/v1/notifications/{notification_id}").json()["status"] == (
        "cancelled"
    )
    console[:] = [line for line in console if line != expected_error]  # the 422 was the point


def test_the_list_and_detail_fit_a_phone_and_search_by_correlation_id(
    browser: Browser, sinks_stack: RunningStack
) -> None:
    # GIVEN a notification with a known correlation id
    correlation_id = f"order-{uuid.uuid4().hex[:8]}"
    sent = sinks_stack.post(
        {"recipient": {"email": "phone@example.com"}, "channels": ["email"], "message": "Hi"},
        headers={"X-Correlation-ID": correlation_id},
    ).json()["id"]
    sinks_stack.wait_terminal(sent)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    problems: list[str] = []
    watch(page, problems)
    try:
        # WHEN the list is searched by that correlation id on a phone
        sign_in(page, sinks_stack)
        page.get_by_label("Search id or correlation id").fill(correlation_id)
        page.get_by_label("Search id or correlation id").press("Enter")

        # THEN that notification is the only one, and nothing is wider than the screen
        expect(page.locator("tr[data-id]")).to_have_count(1)
        expect(page.locator(f'tr[data-id="{sent}"]')).to_be_visible()
        page_width = page.evaluate("document.documentElement.scrollWidth")
        assert page_width <= 390
        assert accessibility_problems(page) == []
        shot(page, "list-phone")

        # AND its detail fits the phone too
        page.locator(f'tr[data-id="{sent}"]').get_by_role("link", name=sent).click()
        expect(page.get_by_test_id("status")).to_have_text("sent")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert accessibility_problems(page) == []
        shot(page, "detail-phone")
    finally:
        context.close()
    assert problems == []
