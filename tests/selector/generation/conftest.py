"""Fixtures: a misbehaving fake server, a real llama.cpp server, and a tiny local causal LM."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.selector.generation.servers import (
    FakeServer,
    free_port,
    smollm2_gguf,
    start_llama_server,
)


@pytest.fixture(scope="session")
def _fake_server():
    server = FakeServer()
    yield server
    server.close()


@pytest.fixture
def fake_server(_fake_server):
    """The fake server with a fresh, well-behaved script; tests call ``reset(...)`` to change it."""
    _fake_server.reset()
    return _fake_server


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory) -> str:
    """Base URL of a real OpenAI-compatible server (llama-cpp-python) running SmolLM2-135M."""
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    process = start_llama_server(smollm2_gguf(), port, log)
    yield f"http://127.0.0.1:{port}/v1"
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def build_tiny_causal_lm(directory: Path) -> Path:
    """A 2-layer Llama with a byte-level BPE tokenizer and a ChatML template, saved locally."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    # The end-of-text token gets id 0: a model whose logits are all equal picks it greedily.
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = ["Solve the problem step by step.", "# Answer", "$x^2 = 25$", "The answer is 5."]
    backend.train_from_iterator(corpus * 20, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=specials,
    )
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    tokenizer.save_pretrained(directory)
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_causal_lm(tmp_path_factory) -> Path:
    import torch

    torch.manual_seed(0)
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"))
