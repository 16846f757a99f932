"""A labeler taken off a campaign loses the tasks of it they hold: rating or resuming one
gets the refusal a lapsed lease gets, and regular work goes back to the queue."""

import pytest
from django.urls import reverse

from annotate.models import Assignment, Campaign, Label
from annotate.queue import next_assignment
from tests.factories import make_task, stored_ratings

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(labeler, campaign):
    assignment, label = make_task(labeler, campaign)
    label.rate(0, 1)
    return assignment


def _state(assignment) -> str:
    assignment.refresh_from_db()
    return assignment.state


@pytest.mark.parametrize(
    "remove",
    [
        lambda campaign, user: campaign.labelers.remove(user),
        lambda campaign, user: user.labeling_campaigns.remove(campaign),
        lambda campaign, user: campaign.labelers.clear(),
        lambda campaign, user: user.labeling_campaigns.clear(),
        lambda campaign, user: campaign.labelers.set([]),
    ],
    ids=["remove", "reverse-remove", "clear", "reverse-clear", "set"],
)
def test_removal_releases_the_held_task(held, labeler, campaign, remove):
    remove(campaign, labeler)
    assert _state(held) == Assignment.State.EXPIRED
    # The sample is back in the queue as a fresh unclaimed slot; the partial label stays.
    assert Assignment.objects.unclaimed().filter(sample=held.sample).count() == 1
    assert stored_ratings(Label.objects.get(assignment=held)) == {0: (1, False)}


def test_other_campaigns_and_labelers_keep_their_tasks(held, labeler, other_labeler, campaign):
    elsewhere = Campaign.objects.create(slug="elsewhere", name="Elsewhere")
    mine_elsewhere, _ = make_task(labeler, elsewhere)
    theirs, _ = make_task(other_labeler, campaign)
    campaign.labelers.remove(labeler)
    assert _state(held) == Assignment.State.EXPIRED
    assert _state(mine_elsewhere) == Assignment.State.IN_PROGRESS
    assert _state(theirs) == Assignment.State.IN_PROGRESS


def test_a_removed_labeler_can_neither_rate_nor_resume(client, held, labeler, campaign):
    client.force_login(labeler)
    campaign.labelers.remove(labeler)
    response = client.post(
        reverse("task-rate", args=[held.pk]), {"step": "1", "rating": "1"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 409
    assert "went back to the queue" in response.content.decode()
    assert stored_ratings(Label.objects.get(assignment=held)) == {0: (1, False)}
    assert next_assignment(labeler) is None  # nothing to resume, no campaign to claim from
    resume = client.get(reverse("labeling-next"))
    assert resume.status_code == 200 and b"All caught up" in resume.content


def test_adding_a_labeler_releases_nothing(held, other_labeler, campaign):
    campaign.labelers.add(other_labeler)
    assert _state(held) == Assignment.State.IN_PROGRESS
