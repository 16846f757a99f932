"""The web process stays light (no torch), and the Celery settings and task options that make
scoring survive a killed worker are what the pipeline relies on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

REPO = Path(__file__).resolve().parents[3]

WEB_IMPORTS = """
import json, sys
import django
django.setup()
import config.urls, config.wsgi, annotate.views, annotate.admin, workers.tasks, workers.pipeline
from django.contrib import admin
admin.autodiscover()
from annotate.generations import start_generation
from workers.tasks import prepare_generation
print(json.dumps({name: name in sys.modules for name in ("torch", "transformers")}))
"""


def test_web_process_imports_leave_torch_out():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    done = subprocess.run(
        [sys.executable, "-c", WEB_IMPORTS],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == {"torch": False, "transformers": False}


def test_celery_settings_make_delivery_at_least_once():
    from config.celery import app

    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_default_queue == "default"
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] >= 60 * 60


def test_tasks_declare_queues_and_finish_within_the_visibility_timeout():
    from workers.tasks import GENERATION_TASKS, prepare_generation, score_chunk, select_generation

    assert prepare_generation.queue == score_chunk.queue == "gpu"
    assert select_generation.queue == "default"
    # A task still running is never handed to a second worker.
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    for task in GENERATION_TASKS:
        assert task.acks_late is True
        assert task.reject_on_worker_lost is True
        assert 0 < task.soft_time_limit < task.time_limit < visibility
        assert task.max_retries >= 1
