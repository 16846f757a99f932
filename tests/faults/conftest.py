"""Fixtures of the fault tests: proxies in front of PostgreSQL and Redis, a gunicorn factory."""

from __future__ import annotations

import os

import pytest

from tests.faults.harness import BROKER, WebServer, target_of
from tests.faults.proxy import TcpProxy
from tests.workers.pipeline.test_pipeline_worker import database_url


@pytest.fixture
def db_proxy():
    proxy = TcpProxy(target_of(database_url(), 5432))
    yield proxy
    proxy.close()


@pytest.fixture
def broker_proxy():
    proxy = TcpProxy(target_of(BROKER, 6379))
    yield proxy
    proxy.close()


@pytest.fixture
def web_server(tmp_path):
    """A factory: `web_server(database_url, broker_url, threads=4)`; stopped after the test."""
    servers: list[WebServer] = []

    def start(database: str, broker: str, *, threads: int = 4) -> WebServer:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "true",
            "DATABASE_URL": database,
            "CELERY_BROKER_URL": broker,
            # Persistent connections: a cut breaks connections the server holds, as in production.
            "DATABASE_CONN_MAX_AGE": "600",
            "STEPWISE_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        servers.append(WebServer(tmp_path, env, threads=threads))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()
