"""Server-Timing (#16 item 4): each response says what it cost the server, when asked to.

The load benchmark reads it to tell a slow request's cause (queries, database time, CPU)
from queueing; off by default, a deployment does not show it to every client.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

ROOT = Path(__file__).resolve().parents[2]
TIMING = "config.server_timing.ServerTimingMiddleware"


@pytest.fixture
def timed(settings):
    settings.MIDDLEWARE = [TIMING, *settings.MIDDLEWARE]


def middleware_with(value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "STEPWISE_SERVER_TIMING"}
    if value is not None:
        env["STEPWISE_SERVER_TIMING"] = value
    code = "from django.conf import settings; print(settings.MIDDLEWARE[0])"
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "true"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_only_the_environment_turns_it_on() -> None:
    assert middleware_with(None) != TIMING
    assert middleware_with("true") == TIMING


@pytest.mark.django_db
def test_the_header_counts_the_requests_own_queries(client, labeler, campaign, timed) -> None:
    client.force_login(labeler)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/next/")
    assert response.status_code == 200
    header = response["Server-Timing"]
    match = re.fullmatch(
        r'db;dur=([\d.]+);desc="(\d+) queries", cpu;dur=([\d.]+), total;dur=([\d.]+)', header
    )
    assert match, header
    db_ms, count, cpu_ms, total_ms = match.groups()
    assert int(count) == len(queries.captured_queries) > 0
    # One thread: its CPU time and its database time both fit inside its wall time.
    assert float(db_ms) <= float(total_ms) and float(cpu_ms) <= float(total_ms) + 0.5


@pytest.mark.django_db
def test_without_it_no_response_tells_its_costs(client, labeler) -> None:
    client.force_login(labeler)
    assert "Server-Timing" not in client.get("/next/")
