"""Health probes: `/healthz/live`, `/healthz/ready` and `/healthz`.

- `/healthz/live`: the process answers HTTP (liveness: restart the container if not).
- `/healthz/ready`: the web process can serve pages (readiness: route traffic to it): the
  database answers and the static files are there (under manifest storage, a server started
  without `collectstatic` would answer every page with a 500). The broker is reported but
  does not fail readiness: labeling never needs it.
- `/healthz`: everything the whole deployment needs, broker included (operators, and
  `python -m config.health` for containers with no HTTP server, such as beat).

Load balancers probe by IP over plain HTTP, so `HealthCheckMiddleware` answers these before
`CommonMiddleware` validates the Host header against ALLOWED_HOSTS, and settings exempt them
from the SSL redirect (SECURE_REDIRECT_EXEMPT). Each returns 200 with a JSON report such as
`{"database": "ok", "broker": "ok"}`, or 503 with a failing check's value set to
`"error: <ExceptionClass>"` (class only: messages may carry host names or credentials).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
LIVE_PATH = "/healthz/live"
READY_PATH = "/healthz/ready"
# Every page links this stylesheet: if it does not resolve, no page renders.
STATIC_PROBE = "css/stepwise.css"
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


def check_static_files() -> str:
    """Resolve the stylesheet every page links, the way templates resolve it."""
    # Manifest storage raises ValueError for a name collectstatic never recorded.
    staticfiles_storage.url(STATIC_PROBE)
    if not (staticfiles_storage.exists(STATIC_PROBE) or finders.find(STATIC_PROBE)):
        raise FileNotFoundError(STATIC_PROBE)
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
READY_CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "static": check_static_files,
}
# Reported by /healthz/ready, never failing it: the web path works without a broker.
READY_REPORTED: dict[str, Callable[[], str]] = {"broker": check_broker}


def _run(checks: dict[str, Callable[[], str]]) -> tuple[dict[str, str], bool]:
    """Run `checks`; a check that raises is reported by its exception class."""
    report: dict[str, str] = {}
    healthy = True
    for name, check in checks.items():
        try:
            report[name] = check()
        except Exception as exc:  # a probe must answer, whatever broke
            logger.warning("health check %s failed", name, exc_info=True)
            report[name] = f"error: {type(exc).__name__}"
            healthy = False
    return report, healthy


def health_report() -> tuple[dict[str, str], bool]:
    """Database and broker: healthy when both answer."""
    return _run(CHECKS)


def readiness_report() -> tuple[dict[str, str], bool]:
    """Database and static files decide; the broker's state is added to the report."""
    report, ready = _run(READY_CHECKS)
    report.update(_run(READY_REPORTED)[0])
    return report, ready


def _probe_response(report: dict[str, str], healthy: bool) -> HttpResponse:
    response = JsonResponse(report, status=200 if healthy else 503)
    response["Cache-Control"] = "no-store"
    return response


@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """200 when the database and the broker answer, 503 naming what failed."""
    return _probe_response(*health_report())


@require_safe
def live(request: HttpRequest) -> HttpResponse:
    """200 while the process serves HTTP; it checks nothing else on purpose."""
    return _probe_response({"process": OK}, True)


@require_safe
def ready(request: HttpRequest) -> HttpResponse:
    """200 when the database answers and static files resolve; the broker is only reported."""
    return _probe_response(*readiness_report())


PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    HEALTH_PATH: healthz,
    LIVE_PATH: live,
    READY_PATH: ready,
}


class HealthCheckMiddleware:
    """Answer GET/HEAD on the health probes before the Host header is validated.

    Load balancers send their own address as Host, which ALLOWED_HOSTS rightly refuses for
    every other page; these paths reveal nothing but a few status words.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path)
        if probe is not None and request.method in {"GET", "HEAD"}:
            return probe(request)
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
