"""Fixtures of the scoring-pipeline tests."""

import pytest


@pytest.fixture
def tiny_models(tiny_bootstrap):
    """Chunks of ~7 samples, sub-batches of 3: a small pool still takes several of each."""
    tiny_bootstrap.STEPWISE_SCORING_CHUNK = 7
    tiny_bootstrap.STEPWISE_SCORING_SUB_BATCH = 3
    return tiny_bootstrap
