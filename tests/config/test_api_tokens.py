"""API tokens: a fresh one works, an expired one (STEPWISE_TOKEN_TTL_DAYS) and a revoked one
(admin action, or the user's own DELETE /api/v1/me/token/) get 401; the admin lists users
with their last login and tokens with their expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import API

pytestmark = pytest.mark.django_db


def with_token(token: Token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def made_days_ago(token: Token, days: float) -> Token:
    Token.objects.filter(pk=token.pk).update(created=timezone.now() - timedelta(days=days))
    token.refresh_from_db()
    return token


def test_fresh_token_works_and_never_expires_by_default(labeler) -> None:
    token = made_days_ago(Token.objects.create(user=labeler), 3650)
    response = with_token(token).get(f"{API}/me/")
    assert response.status_code == 200 and response.json()["username"] == "labeler"


def test_token_older_than_the_ttl_gets_401(labeler, settings) -> None:
    settings.STEPWISE_TOKEN_TTL_DAYS = 30
    fresh = made_days_ago(Token.objects.create(user=labeler), 29)
    assert with_token(fresh).get(f"{API}/me/").status_code == 200
    expired = made_days_ago(fresh, 31)
    response = with_token(expired).get(f"{API}/me/")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_user_revokes_their_own_token(labeler, other_labeler) -> None:
    token = Token.objects.create(user=labeler)
    other = Token.objects.create(user=other_labeler)
    client = with_token(token)
    assert client.delete(f"{API}/me/token/").status_code == 204
    assert client.get(f"{API}/me/").status_code == 401
    assert with_token(other).get(f"{API}/me/").status_code == 200  # others' tokens stay


def test_lead_revokes_tokens_from_the_user_list(lead, labeler, other_labeler) -> None:
    token = Token.objects.create(user=labeler)
    kept = Token.objects.create(user=other_labeler)
    admin = Client()
    admin.force_login(lead)
    response = admin.post(
        "/admin/auth/user/",
        {"action": "revoke_tokens", "_selected_action": [labeler.pk]},
        follow=True,
    )
    assert "Revoked 1 token(s)." in response.content.decode()
    assert with_token(token).get(f"{API}/me/").status_code == 401
    assert with_token(kept).get(f"{API}/me/").status_code == 200


def test_lead_revokes_one_token_by_deleting_it(lead, labeler) -> None:
    token = Token.objects.create(user=labeler)
    admin = Client()
    admin.force_login(lead)
    # DRF's token admin addresses a token by its user's id.
    response = admin.post(f"/admin/authtoken/tokenproxy/{labeler.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert with_token(token).get(f"{API}/me/").status_code == 401


def test_token_admin_shows_expiry(lead, labeler, settings) -> None:
    settings.STEPWISE_TOKEN_TTL_DAYS = 10
    token = Token.objects.create(user=labeler)
    admin = Client()
    admin.force_login(lead)
    page = admin.get("/admin/authtoken/tokenproxy/").content.decode()
    assert f"{token.created + timedelta(days=10):%Y-%m-%d %H:%M}" in page


def test_user_admin_lists_last_login(lead, labeler) -> None:
    when = timezone.now().replace(year=2024, month=2, day=29, hour=13, minute=37)
    type(labeler).objects.filter(pk=labeler.pk).update(last_login=when)
    admin = Client()
    admin.force_login(lead)
    page = admin.get("/admin/auth/user/").content.decode()
    assert "Last login" in page
    assert "Feb. 29, 2024, 1:37" in page
