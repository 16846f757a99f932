"""The OpenAI backend against a fake server that caps n, throttles, fails and stalls."""

import time

import pytest

from selector.generation import (
    GenerationError,
    GeneratorConfig,
    ProblemPrompt,
    make_generator,
    propose_alternatives,
)
from selector.generation.openai_backend import OpenAIGenerator

PROBLEMS = [ProblemPrompt(key=f"p{i}", problem=f"Problem number {i}?") for i in range(3)]


def generator(server, **settings) -> OpenAIGenerator:
    config = GeneratorConfig(base_url=server.url, model="fake", **{"n": 4, **settings})
    return OpenAIGenerator(config, backoff_base=0.01)


def keys(solutions):
    return sorted((s.problem_key, s.index) for s in solutions)


def test_all_n_in_one_request_per_problem(fake_server):
    solutions = list(generator(fake_server).generate(PROBLEMS))
    assert keys(solutions) == [(p.key, i) for p in PROBLEMS for i in range(4)]
    assert [r["n"] for r in fake_server.requests] == [4, 4, 4]
    assert all(s.has_answer and s.finish_reason == "stop" for s in solutions)
    asked = {r["messages"][-1]["content"] for r in fake_server.requests}
    assert asked == {p.problem for p in PROBLEMS}
    first = fake_server.requests[0]
    assert first["model"] == "fake" and first["messages"][0]["role"] == "system"
    assert "stop" not in first and "seed" not in first  # unset options are left out


def test_settings_reach_the_server(fake_server):
    settings = {"temperature": 0.3, "top_p": 0.9, "max_tokens": 77, "stop": ("END",), "seed": 5}
    list(generator(fake_server, n=1, **settings).generate(PROBLEMS[:1]))
    request = fake_server.requests[0]
    assert {name: request[name] for name in settings} == {**settings, "stop": ["END"]}


def test_server_that_silently_caps_n(fake_server):
    fake_server.reset(max_n=3)
    gen = generator(fake_server, n=7)
    solutions = list(gen.generate(PROBLEMS[:1]))
    assert keys(solutions) == [("p0", i) for i in range(7)]
    first, *rest = [r["n"] for r in fake_server.requests]
    assert first == 7 and sorted(rest) == [1, 3]
    assert gen.n_cap == 3


def test_server_that_refuses_n_over_its_cap(fake_server):
    fake_server.reset(max_n=2, reject_over_cap=True)
    gen = generator(fake_server, n=5)
    solutions = list(gen.generate(PROBLEMS[:1]))
    assert keys(solutions) == [("p0", i) for i in range(5)]
    first, *rest = [r["n"] for r in fake_server.requests]
    assert first == 5 and sorted(rest) == [1, 2, 2]
    assert gen.n_cap == 2 and gen.stats.retries == 0


def test_configured_cap_splits_requests_from_the_start(fake_server):
    list(generator(fake_server, n=5, max_n_per_request=2).generate(PROBLEMS[:1]))
    assert sorted(r["n"] for r in fake_server.requests) == [1, 2, 2]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_errors_are_retried(fake_server, status):
    fake_server.reset(failures=[status, status], retry_after="0")
    gen = generator(fake_server, n=2)
    solutions = list(gen.generate(PROBLEMS[:1]))
    assert keys(solutions) == [("p0", 0), ("p0", 1)]
    assert gen.stats.retries == 2 and gen.stats.requests == 3


def test_a_stalled_request_times_out_and_is_retried(fake_server):
    fake_server.reset(failures=["stall"], stall_seconds=1.5)
    gen = generator(fake_server, n=2, timeout=0.3)
    solutions = list(gen.generate(PROBLEMS[:1]))
    assert len(solutions) == 2 and gen.stats.retries == 1


def test_retries_are_bounded(fake_server):
    fake_server.reset(failures=[500] * 10)
    with pytest.raises(GenerationError, match="500"):
        list(generator(fake_server, retries=2).generate(PROBLEMS[:1]))
    assert len(fake_server.requests) == 3


def test_client_errors_are_not_retried(fake_server):
    fake_server.reset(failures=[401])
    with pytest.raises(GenerationError):
        list(generator(fake_server).generate(PROBLEMS[:1]))
    assert len(fake_server.requests) == 1


def test_resume_asks_only_for_missing_indices(fake_server):
    existing = {"p0": {0, 2}, "p1": range(4)}
    solutions = list(generator(fake_server).generate(PROBLEMS[:2], existing=existing))
    assert keys(solutions) == [("p0", 1), ("p0", 3)]
    assert [r["n"] for r in fake_server.requests] == [2]


def test_n_argument_overrides_the_config(fake_server):
    assert len(list(generator(fake_server, n=4).generate(PROBLEMS[:1], n=1))) == 1
    assert list(generator(fake_server, n=4).generate(PROBLEMS[:1], n=0)) == []
    assert fake_server.requests and all(r["n"] == 1 for r in fake_server.requests)


def test_empty_and_unparsable_outputs_are_kept_without_answer(fake_server):
    replies = {0: "", 1: "I have no idea.", 2: "Fine.\n\n# Answer\n\n2"}
    fake_server.reset(reply=lambda messages, i: replies[i])
    gen = generator(fake_server, n=3)
    solutions = sorted(gen.generate(PROBLEMS[:1]), key=lambda s: s.index)
    assert [s.answer for s in solutions] == [None, None, "2"]
    assert solutions[0].steps == [] and solutions[0].text == ""
    assert gen.stats.solutions == 3 and gen.stats.without_answer == 2


def test_progress_counts_up_to_the_total(fake_server):
    seen = []
    list(generator(fake_server).generate(PROBLEMS, progress=lambda done, total: seen.append(done)))
    assert seen == sorted(seen) and seen[-1] == 12
    assert len(seen) == 3


def test_requests_run_concurrently_within_the_bound(fake_server):
    fake_server.reset(delay=0.3)
    problems = [ProblemPrompt(key=f"q{i}", problem=f"Q{i}") for i in range(8)]
    started = time.monotonic()
    solutions = list(generator(fake_server, n=1, concurrency=4).generate(problems))
    elapsed = time.monotonic() - started
    assert len(solutions) == 8
    assert 2 <= fake_server.max_in_flight <= 4
    assert elapsed < 8 * 0.3  # one at a time would take 2.4 s


def test_a_failed_problem_stops_the_run_after_what_finished(fake_server):
    fake_server.reset(fail_problem="Problem number 1?")
    gen = generator(fake_server, concurrency=1)
    got = []
    with pytest.raises(GenerationError):
        for solution in gen.generate(PROBLEMS):
            got.append(solution)
    assert {s.problem_key for s in got} == {"p0"}
    # The resumed run skips what was stored.
    fake_server.reset()
    existing = {"p0": {s.index for s in got}}
    again = list(gen.generate(PROBLEMS, existing=existing))
    assert {s.problem_key for s in again} == {"p1", "p2"}


def test_stopping_early_does_not_hang(fake_server):
    fake_server.reset(delay=0.05)
    problems = [ProblemPrompt(key=f"q{i}", problem=f"Q{i}") for i in range(20)]
    iterator = generator(fake_server, n=1, concurrency=2).generate(problems)
    first = next(iterator)
    iterator.close()
    assert first.index == 0
    assert len(fake_server.requests) < 20


def test_api_key_comes_from_the_named_variable(fake_server, monkeypatch):
    monkeypatch.setenv("STEPWISE_TEST_KEY", "sk-test")
    config = GeneratorConfig(
        base_url=fake_server.url, model="m", n=1, api_key_env="STEPWISE_TEST_KEY"
    )
    list(make_generator(config).generate(PROBLEMS[:1]))
    assert fake_server.authorizations == ["Bearer sk-test"]


def test_complete_collects_n_texts_past_a_cap(fake_server):
    fake_server.reset(max_n=1)
    texts = generator(fake_server).complete([{"role": "user", "content": "hi"}], 3)
    assert len(texts) == 3 and [r["n"] for r in fake_server.requests] == [3, 1, 1]


def test_alternatives_are_first_steps_deduplicated(fake_server):
    replies = ["Alt A.\n\nMore.", "Alt  A.", "The wrong step.", "  \n\n", "Alt B.\n\n# Answer\n\n1"]
    fake_server.reset(reply=lambda messages, i: replies[i])
    gen = generator(fake_server)
    alternatives = propose_alternatives(
        gen, "What is 1?", ["First.", "Second."], m=5, exclude=["The wrong step."]
    )
    assert alternatives == ["Alt A.", "Alt B.\n\n# Answer\n\n1"]
    prompt = fake_server.requests[0]["messages"][-1]["content"]
    assert "What is 1?" in prompt and "First.\n\nSecond." in prompt
    assert fake_server.requests[0]["n"] == 5
    assert propose_alternatives(gen, "What is 1?", [], m=0) == []
