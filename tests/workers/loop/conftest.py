"""Fixtures of the retraining-loop tests: tiny models under a temporary model directory."""

import pytest

from tests.factories import TINY_BOOTSTRAP


@pytest.fixture
def tiny_loop(settings, tmp_path):
    """Tiny bootstrap PRMs, a temporary model dir, one torch thread (a shared 2-core box)."""
    settings.STEPWISE_MODEL_DIR = tmp_path / "models"
    settings.STEPWISE_BOOTSTRAP = dict(TINY_BOOTSTRAP)
    # Several optimizer steps per epoch on a few dozen short solutions.
    settings.STEPWISE_TRAIN_BATCH_TOKENS = 160
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield settings
    torch.set_num_threads(threads)


@pytest.fixture
def eager():
    """Celery tasks run in-process (the embedded default), whatever the broker setting."""
    from config.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved
