"""Alternatives at the first error (PRM800K phase 2): proposed when a label finds an error,
rated by the labeler, exported as that step's completions, trained on as extra examples."""

import io
import json

import pytest

from annotate.io.prm800k import export_prm800k, import_prm800k, iter_prm800k_records
from annotate.models import Alternative, Campaign, Label
from tests.factories import configure_generator, make_task
from workers.generation import propose_label_alternatives
from workers.training_data import campaign_training_examples

pytestmark = pytest.mark.django_db

STEPS = ["Let $x = 2$.", "Then $x^2 = 5$.", "So the answer is 6.", "# Answer\n\n6"]


def found_error(labeler, campaign, django_capture_on_commit_callbacks, eager):
    """A label rated +1, −1 through `Label.rate`; the hook's task runs at commit."""
    assignment, label = make_task(labeler, campaign, STEPS)
    with django_capture_on_commit_callbacks(execute=True):
        with Label.locked(assignment.pk, labeler.pk) as locked:
            locked.rate(0, 1)
        with Label.locked(assignment.pk, labeler.pk) as locked:
            assert locked.rate(1, -1).finish_reason == "found_error"
    return label


def test_a_found_error_proposes_distinct_alternatives_to_the_erroneous_step(
    campaign, labeler, fake_server, django_capture_on_commit_callbacks, eager
):
    configure_generator(campaign, fake_server.url, n=0, alternatives=4)
    replies = ["Then $x^2 = 4$.", "Then $x^2 = 5$.", "Then $x^2 = 4$.", "Squaring: $4$.\n\nMore."]
    fake_server.reset(reply=lambda messages, i: replies[i])
    label = found_error(labeler, campaign, django_capture_on_commit_callbacks, eager)

    rows = list(label.alternatives.values_list("step", "index", "text", "rating"))
    # The original and repeats are dropped; only a completion's first step is kept.
    assert rows == [(1, 0, "Then $x^2 = 4$.", None), (1, 1, "Squaring: $4$.", None)]
    prompt = fake_server.requests[0]["messages"][-1]["content"]
    assert "Let $x = 2$." in prompt and "Then $x^2 = 5$." not in prompt
    assert propose_label_alternatives(label.pk) == 0  # a redelivery adds nothing


def test_no_alternatives_when_off_or_without_a_generator(
    campaign, labeler, fake_server, django_capture_on_commit_callbacks, eager
):
    configure_generator(campaign, fake_server.url, n=0, alternatives=0)
    label = found_error(labeler, campaign, django_capture_on_commit_callbacks, eager)
    assert not label.alternatives.exists() and not fake_server.requests
    campaign.alternatives, campaign.generator_model = 4, ""
    campaign.save()
    assert propose_label_alternatives(label.pk) == 0


def test_rating_an_alternative(campaign, labeler, fake_server):
    _, label = make_task(labeler, campaign, STEPS)
    Alternative.store(label.pk, 1, ["Then $x^2 = 4$."])
    alternative = label.alternatives.get()
    assert alternative.rate(1) is False  # the label has not found an error: nothing written
    label.ratings.create(step=0, rating=1)
    label.ratings.create(step=1, rating=-1)
    Label.objects.filter(pk=label.pk).update(finish_reason="found_error")
    assert alternative.rate(1) is True and alternative.rate(0) is True
    alternative.refresh_from_db()
    assert alternative.rating == 0 and alternative.rated_at is not None
    with pytest.raises(ValueError):
        alternative.rate(2)


def rated_label(labeler, campaign, fake_server, capture, eager):
    configure_generator(campaign, fake_server.url, n=0, alternatives=3)
    replies = ["Then $x^2 = 4$.", "Then $x \\cdot x = 4$.", "Then $x^2 = 2^2 = 4$."]
    fake_server.reset(reply=lambda messages, i: replies[i])
    label = found_error(labeler, campaign, capture, eager)
    first, second, _unrated = label.alternatives.order_by("index")
    first.rate(1)
    second.rate(-1)
    return label


def test_export_writes_rated_alternatives_as_prm800k_completions_and_round_trips(
    campaign, labeler, fake_server, django_capture_on_commit_callbacks, eager
):
    rated_label(labeler, campaign, fake_server, django_capture_on_commit_callbacks, eager)
    (record,) = iter_prm800k_records(campaign)
    steps = record["label"]["steps"]
    assert len(steps) == 2 and steps[0]["chosen_completion"] == 0
    # As PRM800K's phase-2 found_error records: original first, chosen_completion null.
    assert steps[1] == {
        "completions": [
            {"text": "Then $x^2 = 5$.", "rating": -1, "flagged": False},
            {"text": "Then $x^2 = 4$.", "rating": 1, "flagged": False},
            {"text": "Then $x \\cdot x = 4$.", "rating": -1, "flagged": False},
        ],
        "human_completion": None,
        "chosen_completion": None,
    }
    out = io.StringIO()
    export_prm800k(out, campaign)
    again = Campaign.objects.create(slug="round-trip")
    import_prm800k(io.StringIO(out.getvalue()), again)
    back = io.StringIO()
    export_prm800k(back, again)
    assert back.getvalue() == out.getvalue()
    assert json.loads(back.getvalue())["label"]["steps"][1]["completions"][1]["rating"] == 1


def test_each_rated_alternative_is_one_more_training_example(
    campaign, labeler, fake_server, django_capture_on_commit_callbacks, eager
):
    rated_label(labeler, campaign, fake_server, django_capture_on_commit_callbacks, eager)
    examples = [(e.steps, e.ratings) for e in campaign_training_examples(campaign)]
    assert examples == [
        (STEPS[:2], [1, -1]),
        ([STEPS[0], "Then $x^2 = 4$."], [1, 1]),
        ([STEPS[0], "Then $x \\cdot x = 4$."], [1, -1]),
    ]
