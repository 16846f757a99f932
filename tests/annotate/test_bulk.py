"""insert_like: many rows from one template, the same rows bulk_create would write."""

import pytest
from django.utils import timezone

from annotate import bulk
from annotate.bulk import insert_like
from annotate.models import Assignment, Checkpoint, Score
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


def test_text_with_copy_separators_and_many_writes_arrive_exactly(
    generation_and_samples, monkeypatch
):
    generation, ids = generation_and_samples
    monkeypatch.setattr(bulk, "_ROWS_PER_WRITE", 2)  # several buffers for six rows
    reasons = [f"a\tb\nc\\N\\{i}" for i in range(len(ids))]  # tab, newline, \N, backslash
    insert_like(
        Assignment(generation=generation, sample_id=0, kind=Assignment.Kind.REGULAR),
        ("sample_id", "reason"),
        zip(ids, reasons, strict=True),
    )
    rows = Assignment.objects.filter(generation=generation).order_by("id")
    assert list(rows.values_list("sample_id", "reason")) == list(zip(ids, reasons, strict=True))


def test_values_copy_text_cannot_carry_go_through_the_database_adapter(generation_and_samples):
    generation, ids = generation_and_samples
    checkpoint = Checkpoint.objects.create(campaign=generation.campaign, name="c", path="/m/c")
    when = timezone.now()
    insert_like(  # a JSON column in the template, a datetime among the varying ones
        Score(checkpoint=checkpoint, sample_id=0, score=0.0, step_scores=[0.25, 0.5]),
        ("sample_id", "score"),
        [(pk, 1 / pk) for pk in ids],
    )
    insert_like(
        Assignment(generation=generation, sample_id=0),
        ("sample_id", "claimed_at"),
        [(ids[0], when)],
    )
    scores = Score.objects.filter(checkpoint=checkpoint).order_by("sample_id")
    assert [(s.sample_id, s.score, s.step_scores) for s in scores] == [
        (pk, 1 / pk, [0.25, 0.5]) for pk in ids
    ]
    assert Assignment.objects.get(generation=generation).claimed_at == when
