"""The local backend with a tiny causal LM built in the test (no hub, no network)."""

import pytest
import torch

from selector.generation import GeneratorConfig, ProblemPrompt, make_generator, propose_alternatives
from selector.generation.local_backend import LocalGenerator

PROBLEMS = [ProblemPrompt(key="a", problem="What is $1+1$?"), ProblemPrompt("b", "Is 7 prime?")]


def local(model_dir, **settings) -> LocalGenerator:
    config = {"backend": "local", "model": str(model_dir), "n": 3, "max_tokens": 12, **settings}
    return make_generator(GeneratorConfig(**config))


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # A 32-wide model spends its time in thread hand-offs; one thread is ten times faster.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny(tiny_causal_lm, _one_thread):
    return local(tiny_causal_lm, concurrency=4, seed=0)


def test_generates_n_per_problem_in_batches(tiny):
    tiny.stats.requests = 0
    solutions = list(tiny.generate(PROBLEMS))
    assert sorted((s.problem_key, s.index) for s in solutions) == [
        (key, i) for key in ("a", "b") for i in range(3)
    ]
    assert tiny.stats.requests == 2  # 6 sequences, 4 per batch
    assert all(0 < s.completion_tokens <= 12 for s in solutions)
    assert all(s.finish_reason in ("stop", "length") for s in solutions)


def test_loads_fp32_on_cpu_without_remote_code(tiny):
    assert isinstance(tiny, LocalGenerator)
    assert tiny.device.type == "cpu" and tiny.model.dtype == torch.float32
    assert tiny.tokenizer.padding_side == "left"


def test_prompt_goes_through_the_chat_template(tiny):
    prompt = tiny.render(tiny.config.prompt.messages("What is $1+1$?"))
    assert prompt.startswith("<|im_start|>system\n")
    assert prompt.endswith("What is $1+1$?<|im_end|>\n<|im_start|>assistant\n")


def test_resume_skips_stored_indices(tiny):
    solutions = list(tiny.generate(PROBLEMS, existing={"a": [0, 1, 2], "b": [1]}))
    assert sorted((s.problem_key, s.index) for s in solutions) == [("b", 0), ("b", 2)]


def test_same_seed_same_samples(tiny_causal_lm):
    def texts():
        return [s.text for s in local(tiny_causal_lm, seed=7).generate(PROBLEMS[:1])]

    assert texts() == texts()


def test_progress_reports_each_batch(tiny):
    seen = []
    list(tiny.generate(PROBLEMS, progress=lambda done, total: seen.append((done, total))))
    assert seen == [(4, 6), (6, 6)]


def test_an_immediate_end_of_text_is_an_empty_solution_without_answer(tiny_causal_lm):
    gen = local(tiny_causal_lm, temperature=0.0)
    with torch.no_grad():
        gen.model.lm_head.weight.zero_()  # equal logits: greedy picks token 0, end of text
    solutions = list(gen.generate(PROBLEMS[:1]))
    assert [(s.text, s.steps, s.answer, s.finish_reason) for s in solutions] == [
        ("", [], None, "stop")
    ] * 3
    assert gen.stats.without_answer == 3


def test_plain_prompt_where_the_tokenizer_has_no_chat_template(tiny_causal_lm):
    gen = local(tiny_causal_lm)
    gen.tokenizer.chat_template = None
    prompt = gen.render([{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}])
    assert prompt == "S\n\nProblem: Q\n\nSolution:"
    assert len(list(gen.generate(PROBLEMS[:1], n=1))) == 1


def test_alternatives_from_the_local_model(tiny):
    alternatives = propose_alternatives(tiny, "What is $1+1$?", ["I add."], m=3)
    assert len(alternatives) <= 3
    assert len({" ".join(a.split()) for a in alternatives}) == len(alternatives)
    assert len(tiny.complete([{"role": "user", "content": "hi"}], 5)) == 5


def test_the_wrong_backend_is_refused(tiny_causal_lm):
    with pytest.raises(ValueError, match="local"):
        LocalGenerator(GeneratorConfig(backend="openai", model=str(tiny_causal_lm)))


def test_stop_strings_end_a_sample_and_are_cut_off(tiny_causal_lm):
    gen = local(tiny_causal_lm, n=4, max_tokens=24, stop=("e", "a"), seed=1)
    solutions = list(gen.generate(PROBLEMS[:1]))
    assert len(solutions) == 4
    assert not any("e" in s.text or "a" in s.text for s in solutions)
    assert all(s.finish_reason == "stop" for s in solutions if s.completion_tokens < 24)
