"""Login throttling (django-axes) and API tokens that expire.

API tokens (DRF's `Token`, `Authorization: Token <key>`) expire `STEPWISE_TOKEN_TTL_DAYS`
after they were made (unset or 0: never); a lead revokes one by deleting it in the admin
(Auth Token → Tokens) and a user their own with `DELETE /api/v1/me/token/`.

Failed logins are counted per account and per client address; either reaching
`AXES_FAILURE_LIMIT` locks that account or address out for `AXES_COOLOFF_TIME`, and the
login page says so (HTTP 429). A lead unlocks early in the admin (Axes → Access attempts:
delete the rows) or with `manage.py axes_reset_username USERNAME`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

if TYPE_CHECKING:  # a model: importing it here would need the app registry ready
    from rest_framework.authtoken.models import Token


class AxesBackend(AxesStandaloneBackend):
    """Refuses locked-out logins; authenticating without a request is not throttled.

    Axes raises when `authenticate()` has no request (the test client's `login()`, a shell);
    there is no address to count then, and only HTTP logins can be guessed at.
    """

    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> None:
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, or the one the trusted proxies saw.

    Behind `STEPWISE_PROXY_COUNT` reverse proxies every request comes from the last proxy,
    so the client is that many entries from the right of X-Forwarded-For (entries further
    left are whatever the client sent, so they are never trusted).
    """
    proxies = settings.STEPWISE_PROXY_COUNT
    forwarded = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if proxies and len(forwarded) >= proxies and forwarded[-proxies]:
        return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """The login page again, saying the account or address is locked and for how long."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    context = {
        "form": AuthenticationForm(request),
        "locked_out": True,
        "cooloff_minutes": minutes,
        "next": request.POST.get("next", request.GET.get("next", "")),
    }
    return render(request, "registration/login.html", context, status=429)


def token_expires_at(token: Token) -> datetime | None:
    """When `token` stops working: `created` plus STEPWISE_TOKEN_TTL_DAYS; None if never."""
    days = settings.STEPWISE_TOKEN_TTL_DAYS
    return token.created + timedelta(days=days) if days > 0 else None


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, refusing (401) tokens past `token_expires_at`."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        user, token = super().authenticate_credentials(key)
        expires = token_expires_at(token)
        if expires is not None and expires <= timezone.now():
            raise AuthenticationFailed("Token has expired: ask a lead for a new one.")
        return user, token
