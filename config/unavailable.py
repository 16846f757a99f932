"""A lost database connection answers 503 with Retry-After, not a 500.

PostgreSQL restarting, a failover or a cut connection raises `OperationalError` /
`InterfaceError` in the view; its transaction was rolled back, so nothing of the request was
stored and repeating it is safe. The client is told so (label.js shows "Not saved" with a
retry), and Django drops the broken connection at the end of the request
(`conn_health_checks`), so the next request reconnects: no restart is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
MESSAGE = "The database is unreachable for a moment: nothing was saved. Retry in a few seconds."


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.warning(
            "database unavailable during %s %s: %r", request.method, request.path, exception
        )
        response = HttpResponse(MESSAGE, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
