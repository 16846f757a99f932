"""Login throttling (#15 item 2): per account and per address, a clear lockout page, unlock.

The limit comes from settings (`AXES_FAILURE_LIMIT`); these tests lower it to keep them short.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

LIMIT = 3
LOCKED = b"Too many failed logins"


@pytest.fixture(autouse=True)
def _small_limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT


def attempt(username: str, password: str, address: str = "192.0.2.10", **headers):
    return Client().post(
        reverse("login"),
        {"username": username, "password": password},
        REMOTE_ADDR=address,
        **headers,
    )


def logged_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == reverse("labeler-home")


def fail(username: str, times: int, address: str = "192.0.2.10", **headers) -> None:
    for _ in range(times):
        response = attempt(username, "wrong", address, **headers)
        assert response.status_code in {200, 429}


def test_account_locks_after_the_limit_with_a_clear_message(labeler) -> None:
    fail("labeler", LIMIT - 1)
    assert logged_in(attempt("labeler", "labeler-password")), "below the limit: still allowed"
    fail("labeler", LIMIT)
    locked = attempt("labeler", "labeler-password")
    assert locked.status_code == 429
    assert LOCKED in locked.content and b"ask a lead to unlock" in locked.content
    assert b'name="username"' in locked.content  # still the login page
    assert "_auth_user_id" not in locked.wsgi_request.session


def test_account_is_locked_from_every_address(labeler) -> None:
    for number in range(LIMIT):
        fail("labeler", 1, address=f"192.0.2.{20 + number}")
    assert attempt("labeler", "labeler-password", address="198.51.100.7").status_code == 429


def test_address_is_locked_for_every_account(labeler, other_labeler) -> None:
    for number in range(LIMIT):
        fail(f"nobody-{number}", 1, address="203.0.113.5")
    assert attempt("other", "other-password", address="203.0.113.5").status_code == 429
    assert logged_in(attempt("other", "other-password", address="203.0.113.6"))


def test_lead_unlocks_from_the_admin(labeler, lead) -> None:
    fail("labeler", LIMIT)
    assert attempt("labeler", "labeler-password").status_code == 429
    admin = Client()
    admin.force_login(lead)
    changelist = reverse("admin:axes_accessattempt_changelist")
    page = admin.get(changelist)
    assert page.status_code == 200 and b"labeler" in page.content
    response = admin.post(
        changelist,
        {
            "action": "delete_selected",
            "_selected_action": list(AccessAttempt.objects.values_list("pk", flat=True)),
            "post": "yes",
        },
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    assert logged_in(attempt("labeler", "labeler-password"))


def test_lockout_ends_after_the_cool_off(labeler, settings) -> None:
    fail("labeler", LIMIT)
    assert attempt("labeler", "labeler-password").status_code == 429
    past = timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    AccessAttempt.objects.update(attempt_time=past)
    assert logged_in(attempt("labeler", "labeler-password"))


def test_logging_in_to_another_account_does_not_clear_the_count(labeler, other_labeler) -> None:
    """A labeler guessing a lead's password cannot wipe the count by logging in as themselves."""
    fail("labeler", LIMIT - 1, address="192.0.2.40")
    assert logged_in(attempt("other", "other-password", address="192.0.2.40"))
    fail("labeler", 1, address="198.51.100.40")
    assert attempt("labeler", "labeler-password", address="198.51.100.41").status_code == 429


def test_behind_a_proxy_the_forwarded_client_address_counts(labeler, settings) -> None:
    settings.STEPWISE_PROXY_COUNT = 1
    proxy = "10.0.0.1"
    for _ in range(LIMIT):
        # A client cannot pick its address: the proxy appends the one it saw, last.
        fail("nobody", 1, address=proxy, HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.5")
    elsewhere = attempt("labeler", "labeler-password", proxy, HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert logged_in(elsewhere), "another client behind the same proxy is not locked out"
    locked = attempt("labeler", "labeler-password", proxy, HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert locked.status_code == 429


def test_admin_login_is_throttled_too(lead) -> None:
    for _ in range(LIMIT):
        Client().post(
            reverse("admin:login"),
            {"username": "lead", "password": "wrong"},
            REMOTE_ADDR="192.0.2.30",
        )
    response = Client().post(
        reverse("admin:login"),
        {"username": "lead", "password": "lead-password"},
        REMOTE_ADDR="192.0.2.31",
    )
    assert response.status_code == 429 and LOCKED in response.content


def test_test_client_login_and_tokens_are_not_throttled(labeler) -> None:
    """`authenticate()` without a request (client.login, a shell) and API tokens never reach
    the throttle: neither is a password guess over HTTP."""
    fail("labeler", LIMIT)
    assert Client().login(username="labeler", password="labeler-password")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=labeler).key}")
    assert api.get("/api/v1/me/", REMOTE_ADDR="192.0.2.10").status_code == 200


def test_admin_shows_last_login(labeler, lead) -> None:
    assert logged_in(attempt("labeler", "labeler-password"))
    labeler.refresh_from_db()
    assert labeler.last_login is not None
    admin = Client()
    admin.force_login(lead)
    page = admin.get(reverse("admin:auth_user_change", args=[labeler.pk]))
    assert page.status_code == 200 and b"Last login" in page.content
