"""The generation stage against the scriptable fake server: N per train problem, keyed
(problem, generation, index), graded; idempotent when run again or resumed after a failure."""

import pytest

from annotate.generations import begin_generation, pool_samples, start_generation
from annotate.models import Generation, Sample
from selector.generation import GenerationError
from tests.factories import configure_generator, make_problems
from workers import generation as stage

pytestmark = pytest.mark.django_db


def generated(generation):
    return list(
        Sample.objects.filter(generation=generation)
        .order_by("problem_id", "index")
        .values_list("problem__unique_id", "index", "answer", "is_correct")
    )


def test_stage_stores_n_per_train_problem_keyed_and_graded(campaign, fake_server):
    problems = make_problems(campaign, 3)
    configure_generator(campaign, fake_server.url, n=3)
    generation = begin_generation(campaign)
    assert generation.generator == campaign.generator_settings()
    assert generation.generates

    assert stage.generate_samples(generation.pk) is True

    rows = generated(generation)
    # The fake answers choice i with "i"; every ground truth is "1".
    assert rows == [(p.unique_id, i, str(i), i == 1) for p in problems for i in range(3)]
    generation.refresh_from_db()
    assert generation.status == Generation.Status.GENERATING
    assert generation.samples_generated == generation.samples_wanted == 9
    summary = generation.generation_summary
    assert summary["total"] == summary["stored"] == 9 and summary["problems"] == 3
    assert (summary["correct"], summary["wrong"], summary["without_answer"]) == (3, 6, 0)
    assert summary["completion_tokens"] > 0 and summary["requests"] == 3
    sample = Sample.objects.filter(generation=generation).first()
    assert sample.steps[-1].endswith("# Answer\n\n0") and sample.generator == "openai:fake"


def test_empty_outputs_are_kept_without_an_answer_and_left_out_of_the_pool(campaign, fake_server):
    make_problems(campaign, 2)
    configure_generator(campaign, fake_server.url, n=2)
    fake_server.reset(reply=lambda messages, i: "" if i == 0 else f"Add.\n\n# Answer\n\n{i}")
    generation = begin_generation(campaign)
    stage.generate_samples(generation.pk)

    empty = Sample.objects.filter(generation=generation, index=0)
    assert empty.count() == 2 and all(s.answer is None and s.steps == [] for s in empty)
    generation.refresh_from_db()
    assert generation.generation_summary["without_answer"] == 2
    pool = set(pool_samples(campaign).values_list("pk", flat=True))
    assert pool == set(Sample.objects.filter(index=1).values_list("pk", flat=True))


def test_running_the_stage_again_duplicates_nothing_and_asks_for_nothing(campaign, fake_server):
    make_problems(campaign, 2)
    configure_generator(campaign, fake_server.url, n=3)
    generation = begin_generation(campaign)
    stage.generate_samples(generation.pk)
    requests = len(fake_server.requests)
    first = generated(generation)

    assert stage.generate_samples(generation.pk) is True  # a redelivery
    assert generated(generation) == first
    assert len(fake_server.requests) == requests
    generation.refresh_from_db()
    assert generation.samples_generated == 6
    assert generation.generation_summary["stored"] == 6


def test_a_failed_run_keeps_what_came_back_and_the_next_asks_only_for_the_rest(
    campaign, fake_server
):
    problems = make_problems(campaign, 3)
    configure_generator(campaign, fake_server.url, n=2, generator_concurrency=1)
    fake_server.reset(fail_problem=problems[1].problem)
    generation = begin_generation(campaign)
    with pytest.raises(GenerationError):
        stage.generate_samples(generation.pk)
    kept = {(uid, i) for uid, i, _, _ in generated(generation)}
    assert ("gen/1", 0) not in kept and ("gen/0", 0) in kept

    fake_server.reset()
    stage.generate_samples(generation.pk)  # the task again, after the retry or a restart
    asked = [r["messages"][-1]["content"] for r in fake_server.requests]
    assert set(asked) <= {p.problem for p in problems if p.unique_id not in {u for u, _ in kept}}
    assert [(uid, i) for uid, i, _, _ in generated(generation)] == [
        (p.unique_id, i) for p in problems for i in range(2)
    ]
    generation.refresh_from_db()
    assert generation.samples_generated == 6


def test_stage_past_generating_does_nothing(campaign, fake_server):
    make_problems(campaign, 1)
    configure_generator(campaign, fake_server.url, n=1)
    generation = begin_generation(campaign)
    generation.start_scoring(progress_total=0)
    assert stage.generate_samples(generation.pk) is False
    assert not fake_server.requests


@pytest.mark.django_db(transaction=True)
def test_the_pipeline_generates_then_scores_selects_and_assigns(
    campaign, fake_server, tiny_models, eager
):
    problems = make_problems(campaign, 3)
    configure_generator(campaign, fake_server.url, n=4)
    campaign.k = 2
    campaign.save()

    generation = start_generation(campaign)  # eager: the whole pipeline at commit

    generation.refresh_from_db()
    assert generation.status == Generation.Status.OPEN, generation.error
    assert generation.samples_generated == 12
    assert generation.progress_done == generation.progress_total == 12  # all were scored
    picked = list(generation.selections.values_list("sample__generation", "sample__problem"))
    assert len(picked) == 2 * len(problems)
    assert {g for g, _ in picked} == {generation.pk}
    assert generation.assignments.count() == len(picked)


def test_import_only_campaigns_skip_the_stage(campaign, fake_server):
    make_problems(campaign, 1)
    generation = begin_generation(campaign)
    assert generation.generator["n"] == 0 and not generation.generates
