"""Fixtures of the scoring-pipeline tests: tiny models, eager Celery."""

import pytest

from tests.factories import TINY_BOOTSTRAP


@pytest.fixture
def tiny_models(settings, tmp_path):
    """Tiny bootstrap models under a temporary model dir; chunks of ~7 samples, sub-batches
    of 3, so a small pool still takes several chunks and sub-batches."""
    settings.STEPWISE_MODEL_DIR = tmp_path / "models"
    settings.STEPWISE_BOOTSTRAP = dict(TINY_BOOTSTRAP)
    settings.STEPWISE_SCORING_CHUNK = 7
    settings.STEPWISE_SCORING_SUB_BATCH = 3
    import torch

    # One thread: tiny models on a shared 2-core box run ~20× faster than with two.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield settings
    torch.set_num_threads(threads)


@pytest.fixture
def eager_celery():
    """Tasks run in-process (what the embedded demo does), whatever the broker setting."""
    from config.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved
