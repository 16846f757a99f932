"""`/healthz`: is the database reachable, is the broker reachable.

Load balancers probe it by IP over plain HTTP, so `HealthCheckMiddleware` answers it before
`CommonMiddleware` validates the Host header against ALLOWED_HOSTS, and settings exempt it
from the SSL redirect (SECURE_REDIRECT_EXEMPT). It returns 200 with
`{"database": "ok", "broker": "ok"}`, or 503 with the failing check's value set to
`"error: <ExceptionClass>"` (class only: messages may carry host names or credentials).
`python -m config.health` runs the same checks from a shell (exit status 0 or 1).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
# Seconds a probe may wait on the broker: a health check must answer well inside the LB's timeout.
BROKER_TIMEOUT = 2.0

OK = "ok"
NOT_CONFIGURED = "not configured"


def check_database() -> str:
    """Run `SELECT 1` on every configured database connection."""
    for alias in connections:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    return OK


def check_broker(url: str | None = None, timeout: float = BROKER_TIMEOUT) -> str:
    """Ping the Celery broker; eager mode (no broker) is healthy but not configured."""
    if url is None:
        if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
            return NOT_CONFIGURED
        url = settings.CELERY_BROKER_URL
    scheme = urlsplit(url).scheme
    if scheme in {"", "memory"}:
        return NOT_CONFIGURED
    if scheme in {"redis", "rediss"}:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # One attempt: retries with backoff would push the probe past the LB's timeout.
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            client.ping()
        finally:
            client.close()
        return OK
    # Any other transport (amqp, sqs…): let kombu open and close one connection.
    from kombu import Connection

    with Connection(url, connect_timeout=timeout, transport_options={"max_retries": 0}) as conn:
        conn.ensure_connection(max_retries=1, timeout=timeout)
    return OK


CHECKS: dict[str, Callable[[], str]] = {"database": check_database, "broker": check_broker}


def health_report() -> tuple[dict[str, str], bool]:
    """Run every check; a check that raises is reported by its exception class."""
    report: dict[str, str] = {}
    healthy = True
    for name, check in CHECKS.items():
        try:
            report[name] = check()
        except Exception as exc:  # a probe must answer, whatever broke
            logger.warning("health check %s failed", name, exc_info=True)
            report[name] = f"error: {type(exc).__name__}"
            healthy = False
    return report, healthy


@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """200 when the database and the broker answer, 503 naming what failed."""
    report, healthy = health_report()
    response = JsonResponse(report, status=200 if healthy else 503)
    response["Cache-Control"] = "no-store"
    return response


class HealthCheckMiddleware:
    """Answer GET/HEAD `/healthz` before the Host header is validated.

    Load balancers send their own address as Host, which ALLOWED_HOSTS rightly refuses for
    every other page; this path reveals nothing but two status words.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == HEALTH_PATH and request.method in {"GET", "HEAD"}:
            return healthz(request)
        return self.get_response(request)


def main() -> int:
    """`python -m config.health`: the same checks for containers with no HTTP server (beat)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    report, healthy = health_report()
    print(json.dumps(report))
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
