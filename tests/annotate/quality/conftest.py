"""Fixtures for quality control: samples, gold samples, an open generation."""

import itertools
import uuid

import pytest
from django.utils import timezone

from annotate.models import Generation, GoldStandard, Sample

_ids = itertools.count()


@pytest.fixture
def make_sample(problem):
    def make(n_steps: int = 3) -> Sample:
        number = next(_ids)
        return Sample.objects.create(
            campaign=problem.campaign,
            problem=problem,
            external_id=f"quality-{number}",
            steps=[f"Step {i} of sample {number}: $x_{i} = {i}$" for i in range(n_steps)],
            answer="2",
            is_correct=False,
            steps_hash=uuid.uuid4().hex,
        )

    return make


@pytest.fixture
def make_gold(make_sample, lead):
    def make(purpose: str, ratings: list, finish_reason: str, n_steps: int = 3) -> GoldStandard:
        return GoldStandard.objects.create(
            sample=make_sample(n_steps),
            purpose=purpose,
            ratings=ratings,
            finish_reason=finish_reason,
            created_by=lead,
        )

    return make


@pytest.fixture
def opened_generation(campaign):
    return Generation.objects.create(
        campaign=campaign, number=0, status=Generation.Status.OPEN, opened_at=timezone.now()
    )
