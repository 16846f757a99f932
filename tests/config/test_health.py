"""Health probes (#15 item 9): liveness, readiness (database, static files) and the broker.

Readiness must not follow the broker (labeling never needs it) and must fail while the
static files a page links are missing (manifest storage before `collectstatic`).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import yaml
from django.db import OperationalError
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
CLOSED_PORT_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1
LB_HOST = "10.1.2.3"  # load balancers probe by address, which ALLOWED_HOSTS refuses
broken_database = mock.patch(
    "django.db.backends.base.base.BaseDatabaseWrapper.cursor",
    side_effect=OperationalError("connection refused"),
)


@pytest.fixture
def unreachable_broker(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = CLOSED_PORT_BROKER


@pytest.mark.django_db
def test_ready_during_a_broker_outage_reports_it_and_stays_ready(unreachable_broker) -> None:
    response = Client().get("/healthz/ready", HTTP_HOST=LB_HOST)
    assert response.status_code == 200
    assert response.json() == {
        "database": "ok",
        "static": "ok",
        "broker": "error: ConnectionError",
    }
    assert response["Cache-Control"] == "no-store"
    # The whole-deployment check still names the outage.
    assert Client().get("/healthz").status_code == 503


@pytest.mark.django_db
def test_ready_fails_without_the_database(unreachable_broker) -> None:
    with broken_database:
        response = Client().get("/healthz/ready")
    assert response.status_code == 503
    assert response.json()["database"] == "error: OperationalError"


def test_live_checks_nothing_but_the_process(unreachable_broker) -> None:
    with broken_database:
        response = Client().get("/healthz/live", HTTP_HOST=LB_HOST)
        head = Client().head("/healthz/live")
    assert response.status_code == 200 and head.status_code == 200
    assert response.json() == {"process": "ok"}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz/live", "/healthz/ready"])
def test_probes_are_only_get_and_head(path: str, settings) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert Client().post(path).status_code == 405
    assert Client().head(path).status_code == 200


def manifest_storage(settings, static_root: Path) -> None:
    settings.STATIC_ROOT = static_root
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
    }


@pytest.mark.django_db
def test_manifest_storage_without_collectstatic_is_not_ready(settings, tmp_path) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    manifest_storage(settings, tmp_path)
    response = Client().get("/healthz/ready")
    assert response.status_code == 503
    assert response.json() == {
        "database": "ok",
        "static": "error: ValueError",
        "broker": "not configured",
    }


@pytest.mark.django_db
def test_manifest_storage_after_collectstatic_is_ready(settings, tmp_path) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    (tmp_path / "css").mkdir()
    (tmp_path / "css" / "stepwise.css").write_text("body {}", encoding="utf-8")
    (tmp_path / "css" / "stepwise.0123456789ab.css").write_text("body {}", encoding="utf-8")
    manifest = {"version": "1.1", "paths": {"css/stepwise.css": "css/stepwise.0123456789ab.css"}}
    (tmp_path / "staticfiles.json").write_text(json.dumps(manifest), encoding="utf-8")
    manifest_storage(settings, tmp_path)
    response = Client().get("/healthz/ready")
    assert response.status_code == 200, response.json()
    assert response.json()["static"] == "ok"


PRODUCTION_PROBE = """
import json, django
django.setup()
from django.test import Client
client = Client()
out = {path: [r.status_code, json.loads(r.content)]
       for path in ("/healthz/live", "/healthz/ready", "/healthz")
       for r in [client.get(path, HTTP_HOST="10.1.2.3")]}
print(json.dumps(out))
"""


def test_production_server_without_collectstatic_is_live_but_not_ready(tmp_path) -> None:
    """The real production settings (manifest storage, SSL redirect on), an empty static root."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "CELERY_", "STEPWISE_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="stepwise.example.org",
        DJANGO_STATIC_ROOT=str(tmp_path / "static"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'probe.sqlite3'}",
        CELERY_BROKER_URL=CLOSED_PORT_BROKER,
    )
    result = subprocess.run(
        [sys.executable, "-c", PRODUCTION_PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["/healthz/live"] == [200, {"process": "ok"}]
    assert out["/healthz/ready"] == [
        503,
        {"database": "ok", "static": "error: ValueError", "broker": "error: ConnectionError"},
    ]
    assert out["/healthz"][0] == 503


def test_container_probes_use_readiness() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text(encoding="utf-8"))
    web_probe = " ".join(compose["services"]["web"]["healthcheck"]["test"])
    assert "/healthz/ready" in web_probe
    dockerfile = (ROOT / "docker" / "web.Dockerfile").read_text(encoding="utf-8")
    healthcheck = dockerfile[dockerfile.index("HEALTHCHECK") :].split("\n\n")[0]
    assert "/healthz/ready" in healthcheck
    # Beat has no HTTP server: its probe is the whole check, broker included.
    assert compose["services"]["beat"]["healthcheck"]["test"][-2:] == ["-m", "config.health"]


def test_readme_setup_names_collectstatic() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "collectstatic" in readme
