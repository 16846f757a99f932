"""The stage end to end against a real OpenAI-compatible server (llama-cpp-python serving
SmolLM2-135M on CPU): eagerly, and through a real Celery worker process on Redis."""

import pytest
from django.db import connection

from annotate.generations import start_generation
from annotate.models import Generation, Problem, Sample
from tests.factories import configure_generator, make_pool, make_problems
from tests.selector.generation.servers import LLAMA_MODEL_NAME
from tests.workers.pipeline.test_pipeline_worker import (
    BROKER,
    wait_for,
    workers,  # noqa: F401
)

pytestmark = pytest.mark.slow

N = 2


def setup_campaign(campaign, url):
    # Imported samples as well: a 135M model in 32 tokens seldom writes "# Answer", and
    # selection needs answered samples to open the generation.
    make_pool(campaign, n_problems=2, per_problem=3)
    make_problems(campaign, 1)
    configure_generator(
        campaign, url, n=N, generator_model=LLAMA_MODEL_NAME, generator_temperature=0.8
    )
    return list(Problem.objects.filter(campaign=campaign, split="train").order_by("pk"))


def check_generated(generation, problems):
    rows = Sample.objects.filter(generation=generation)
    assert sorted(rows.values_list("problem_id", "index")) == [
        (p.pk, i) for p in problems for i in range(N)
    ]
    assert all(s.is_correct is None for s in rows if s.answer is None)
    summary = generation.generation_summary
    assert summary["total"] == len(problems) * N and summary["completion_tokens"] > 0
    assert summary["without_answer"] == rows.filter(answer__isnull=True).count()


@pytest.mark.django_db(transaction=True)
def test_a_generation_generates_from_a_real_server_then_scores_and_selects(
    campaign, llama_server, tiny_models, eager
):
    problems = setup_campaign(campaign, llama_server)
    generation = start_generation(campaign)
    generation.refresh_from_db()
    assert generation.status == Generation.Status.OPEN, generation.error
    check_generated(generation, problems)
    assert generation.selections.exists()


@pytest.mark.skipif(
    connection.vendor != "postgresql" or not BROKER.startswith("redis://"),
    reason="a worker process needs PostgreSQL and a Redis broker (CI sets them)",
)
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_stage_and_the_pipeline(campaign, llama_server, workers):  # noqa: F811
    problems = setup_campaign(campaign, llama_server)
    worker = workers.start("generator")
    generation = start_generation(campaign)
    wait_for(
        lambda: (
            Generation.objects.filter(
                pk=generation.pk, status__in=[Generation.Status.OPEN, Generation.Status.FAILED]
            ).exists()
            or worker.poll() is not None
        ),
        180,
        "the generation to open",
        workers.log("generator"),
    )
    generation.refresh_from_db()
    assert generation.status == Generation.Status.OPEN, generation.error + workers.log("generator")
    check_generated(generation, problems)
    assert generation.assignments.exists()
