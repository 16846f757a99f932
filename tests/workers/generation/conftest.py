"""The generator engine's servers (fake and llama.cpp) and tiny causal LM, shared from its tests."""

from tests.selector.generation.conftest import (  # noqa: F401
    _fake_server,
    fake_server,
    llama_server,
    tiny_causal_lm,
)
