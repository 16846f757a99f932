"""The OpenAI backend against a real server: llama-cpp-python serving SmolLM2-135M on CPU."""

import pytest

from selector.generation import GeneratorConfig, ProblemPrompt, make_generator, propose_alternatives
from tests.selector.generation.servers import LLAMA_MODEL_NAME

pytestmark = pytest.mark.slow

PROBLEMS = [
    ProblemPrompt(key="add", problem="What is $12 + 30$?"),
    ProblemPrompt(key="square", problem="What is $7^2$?"),
]


def server_generator(url, **settings):
    config = {"base_url": url, "model": LLAMA_MODEL_NAME, "n": 3, "max_tokens": 48, **settings}
    return make_generator(GeneratorConfig(**{"temperature": 0.8, "concurrency": 2, **config}))


def test_n_solutions_per_problem_from_a_real_server(llama_server):
    gen = server_generator(llama_server)
    solutions = list(gen.generate(PROBLEMS))
    assert sorted((s.problem_key, s.index) for s in solutions) == [
        (p.key, i) for p in PROBLEMS for i in range(3)
    ]
    assert all(s.finish_reason in ("stop", "length") for s in solutions)
    assert sum(bool(s.text.strip()) for s in solutions) >= 4  # a 135M model mostly answers
    assert any(s.steps for s in solutions)
    stats = gen.stats
    assert stats.solutions == 6 and 0 < stats.completion_tokens <= 6 * 48
    # llama-cpp-python's server drops n and answers one choice: the generator learns cap 1.
    assert gen.n_cap == 1 and stats.requests == 2 + 2 * 2


def test_resume_against_a_real_server(llama_server):
    gen = server_generator(llama_server, max_tokens=16)
    solutions = list(gen.generate(PROBLEMS, existing={"add": {0, 1, 2}, "square": {0, 2}}))
    assert [(s.problem_key, s.index) for s in solutions] == [("square", 1)]


def test_stop_sequences_and_max_tokens_are_honoured(llama_server):
    gen = server_generator(llama_server, n=2, max_tokens=24, stop=("\n",))
    solutions = list(gen.generate(PROBLEMS[:1]))
    assert len(solutions) == 2
    assert all("\n" not in s.text for s in solutions)
    assert all(s.finish_reason in ("stop", "length") for s in solutions)


def test_alternatives_from_a_real_server(llama_server):
    gen = server_generator(llama_server, max_tokens=32)
    alternatives = propose_alternatives(
        gen, "What is $12 + 30$?", ["I need to add 12 and 30."], m=3, exclude=["12 + 30 = 44."]
    )
    assert len(alternatives) <= 3
    assert all(a.strip() and a != "12 + 30 = 44." for a in alternatives)
