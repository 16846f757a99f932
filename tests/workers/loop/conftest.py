"""Fixtures of the retraining-loop tests."""

import pytest


@pytest.fixture
def tiny_loop(tiny_bootstrap):
    # Several optimizer steps per epoch on a few dozen short solutions.
    tiny_bootstrap.STEPWISE_TRAIN_BATCH_TOKENS = 160
    return tiny_bootstrap
