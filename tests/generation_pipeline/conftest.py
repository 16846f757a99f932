"""Fixtures shared with the generator engine's and the scoring pipeline's tests: the fake and
the real (llama.cpp) OpenAI-compatible servers, a tiny local causal LM, tiny PRM settings."""

from tests.generation.conftest import (  # noqa: F401
    _fake_server,
    fake_server,
    llama_server,
    tiny_causal_lm,
)
from tests.integration.pipeline.conftest import eager_celery, tiny_models  # noqa: F401
