"""Browser tests: Playwright (sync API) driving Debian's chromium against `live_server`.

Playwright's sync API runs an event loop in the test thread, which makes Django refuse ORM
calls there unless DJANGO_ALLOW_ASYNC_UNSAFE is set; the tests only use the ORM between
browser steps, never concurrently with it.
"""

import os
import time

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import pytest
from playwright.sync_api import expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


# Module scope: one chromium per test module, closed before the next module starts, so modules
# that run their own `sync_playwright()` never meet a second live Playwright in this thread.
@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.dialogs = []  # every alert/confirm the page opens, dismissed and recorded

    def on_dialog(dialog):
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    in_flight: set = set()
    context.on("request", lambda request: in_flight.add(request))
    context.on("requestfinished", lambda request: in_flight.discard(request))
    context.on("requestfailed", lambda request: in_flight.discard(request))
    yield page
    # Leaving the page sends a last active-time beacon; keep it off the server, whose database
    # is about to be flushed, and let requests already sent finish first.
    context.route("**/heartbeat/", lambda route: route.abort())
    deadline = time.monotonic() + 10
    while in_flight and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    page.goto("about:blank")
    context.close()
    _wait_for_live_server_requests()


def _wait_for_live_server_requests(timeout: float = 10.0) -> None:
    """Let a request already in flight finish before the flush: a TRUNCATE meeting its row lock
    deadlocks (seen on a loaded 2-core machine)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state NOT IN ('idle')"
            )
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.05)


def wait_until_true(page, script: str, timeout: float = 15.0) -> None:
    """Poll `script` (a JS function) with page.evaluate until it returns true. Unlike
    page.wait_for_function, whose in-page polling evals a string, this works under the CSP."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(script):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {script}")
        page.wait_for_timeout(50)


def login(page, username: str, password: str) -> None:
    """Log in through Django's login form, by keyboard (the username field has autofocus)."""
    page.goto("/accounts/login/")
    # Typing before autofocus lands loses keys on a loaded machine: wait for the focus first.
    # (Playwright's own assertions, not wait_for_function: polling a string needs eval, which
    # the production CSP forbids.)
    expect(page.locator("input[name='username']")).to_be_focused()
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    page.locator("[data-home]").wait_for()  # the home page: the labeler's, or a lead's
    # label.js is deferred: a key pressed before it ran is lost on a loaded machine.
    page.wait_for_load_state("load")


def claim_next(page) -> None:
    """Claim work as a labeler does: the queue page's button, a POST (a GET never claims)."""
    page.goto("/next/")
    if "/tasks/" not in page.url:  # not already holding a task
        page.locator("[data-action='next']").click()
        page.wait_for_url("**/tasks/*/")
