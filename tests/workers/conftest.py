"""Fixtures of the worker tests: tiny models on one torch thread, eager Celery."""

import pytest

from tests.factories import TINY_BOOTSTRAP


@pytest.fixture
def tiny_bootstrap(settings, tmp_path):
    """Tiny bootstrap PRMs under a temporary model dir, on one torch thread: tiny models on a
    shared 2-core box run ~20× faster than with two."""
    settings.STEPWISE_MODEL_DIR = tmp_path / "models"
    settings.STEPWISE_BOOTSTRAP = dict(TINY_BOOTSTRAP)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield settings
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_models(tiny_bootstrap):
    """Scoring chunks of ~7 samples, sub-batches of 3: a small pool still takes several of each."""
    tiny_bootstrap.STEPWISE_SCORING_CHUNK = 7
    tiny_bootstrap.STEPWISE_SCORING_SUB_BATCH = 3
    return tiny_bootstrap


@pytest.fixture
def eager():
    """Celery tasks run in-process (the embedded default), whatever the broker setting."""
    from config.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved
