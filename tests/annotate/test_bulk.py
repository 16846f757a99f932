"""insert_like: many rows from one template, the same rows bulk_create would write."""

import pytest
from django.utils import timezone

from annotate.bulk import insert_like
from annotate.models import Assignment
from tests.factories import make_generation, make_pool


@pytest.fixture
def generation_and_samples(campaign):
    return make_generation(campaign, number=0), make_pool(campaign, n_problems=2, per_problem=3)


def test_rows_take_the_template_but_their_own_columns(generation_and_samples):
    generation, ids = generation_and_samples
    before = timezone.now()
    arms = [Assignment.Arm.UNIFORM if i % 2 else Assignment.Arm.ACTIVE for i in range(len(ids))]
    written = insert_like(
        Assignment(generation=generation, sample_id=0, kind=Assignment.Kind.REGULAR),
        ("sample_id", "arm"),
        zip(ids, arms, strict=True),
    )
    rows = list(Assignment.objects.filter(generation=generation).order_by("id"))
    assert written == len(rows) == len(ids)
    assert [(r.sample_id, r.arm) for r in rows] == list(zip(ids, arms, strict=True))
    # The template's values and the model's defaults, as a save would set them.
    assert {(r.kind, r.state, r.labeler_id, r.reason) for r in rows} == {
        (Assignment.Kind.REGULAR, Assignment.State.OPEN, None, "")
    }
    assert all(r.created_at >= before for r in rows)


def test_a_column_the_model_lacks_is_refused(generation_and_samples):
    generation, ids = generation_and_samples
    with pytest.raises(ValueError, match="not columns of Assignment"):
        insert_like(Assignment(generation=generation), ("sample",), [(ids[0],)])
    assert not Assignment.objects.filter(generation=generation).exists()
