"""Per-request cost in a `Server-Timing` header: SQL queries, time in the database, CPU.

Off unless STEPWISE_SERVER_TIMING is set (the load benchmark turns it on): the figures tell
which requests make a latency tail and why (more queries, slower queries, or Python CPU),
and a deployment has no reason to show them to every client. The header is the W3C Server
Timing format, so browser developer tools show it too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.db import connections
from django.http import HttpRequest, HttpResponse


class QueryTally:
    """An `execute_wrapper`: counts the queries of one request and the time they take."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.count += 1
            self.seconds += time.perf_counter() - started


def server_timing(tally: QueryTally, cpu_seconds: float, wall_seconds: float) -> str:
    return (
        f'db;dur={tally.seconds * 1000:.2f};desc="{tally.count} queries", '
        f"cpu;dur={cpu_seconds * 1000:.2f}, total;dur={wall_seconds * 1000:.2f}"
    )


class ServerTimingMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        tally = QueryTally()
        # thread_time: this request's own CPU, not its neighbours' in a threaded worker.
        cpu, wall = time.thread_time(), time.perf_counter()
        with connections["default"].execute_wrapper(tally):
            response = self.get_response(request)
        response["Server-Timing"] = server_timing(
            tally, time.thread_time() - cpu, time.perf_counter() - wall
        )
        return response
