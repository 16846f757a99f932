"""The control-arm panel: active selection against the uniform arm, on the campaign's labels."""

from collections import Counter

import pytest
from django.urls import reverse

from annotate.arms import arm_rows, generation_arms
from annotate.generations import open_generation
from annotate.models import Assignment, Campaign, Checkpoint, Label, Sample, Score
from selector.proportions import wilson_interval
from tests.factories import finished_label, make_generation, make_pool, make_sample, person

ERROR, SOLUTION, GIVE_UP = (
    Label.FinishReason.FOUND_ERROR,
    Label.FinishReason.SOLUTION,
    Label.FinishReason.GIVE_UP,
)


def _label(campaign, generation, arm, ratings, reason, *, score=None, steps=None, user=None):
    """A finished label on a fresh sample of `arm`, with the generation checkpoint's score."""
    sample = make_sample(campaign)
    user = user or person(f"arm-labeler-{sample.pk}", campaign)
    label = finished_label(user, sample, generation, ratings, reason)
    Assignment.objects.filter(pk=label.assignment_id).update(arm=arm)
    if score is not None:
        Score.objects.create(
            sample=sample, checkpoint=generation.checkpoint, score=score, step_scores=steps or []
        )
    return label


@pytest.fixture
def scored_generation(campaign):
    generation = make_generation(campaign)
    generation.checkpoint = Checkpoint.objects.create(
        campaign=campaign, name="selector", path="/nonexistent"
    )
    generation.score_source = generation.ScoreSource.CHECKPOINT
    generation.save(update_fields=["checkpoint", "score_source"])
    return generation


def test_each_arm_counts_its_own_labels(campaign, scored_generation):
    g = scored_generation
    active, uniform = Assignment.Arm.ACTIVE, Assignment.Arm.UNIFORM
    # Active: 3 errors found (the selector predicted step 1, 1 and nothing), 1 correct, 1 give-up.
    _label(campaign, g, active, [1, -1], ERROR, score=0.9, steps=[0.9, 0.2, 0.8])
    _label(campaign, g, active, [1, -1], ERROR, score=0.7, steps=[0.9, 0.9, 0.1])
    _label(campaign, g, active, [-1], ERROR, score=0.8, steps=[0.9, 0.9])
    _label(campaign, g, active, [1, 1, 1], SOLUTION, score=0.95, steps=[0.9, 0.9, 0.9])
    _label(campaign, g, active, [1], GIVE_UP, score=0.5, steps=[0.9])
    # Uniform: 1 error of 3; the selector's predicted first error agrees on all three.
    _label(campaign, g, uniform, [1, 1, -1], ERROR, score=0.3, steps=[0.9, 0.8, 0.1])
    _label(campaign, g, uniform, [1, 1], SOLUTION, score=0.9, steps=[0.9, 0.9])
    _label(campaign, g, uniform, [1], SOLUTION, score=0.6, steps=[0.7])

    by_arm = {row.arm: row for row in arm_rows(campaign)}

    a = by_arm[active]
    assert (a.labels, a.decided, a.found_error) == (5, 4, 3)
    assert a.error_share == pytest.approx(0.75)
    assert a.mean_wrong_score == pytest.approx((0.9 + 0.7 + 0.8) / 3)
    # Predicted 1 vs 1 (agree), 2 vs 1, none vs 0, none vs none (agree).
    assert (a.compared, a.disagreements) == (4, 2)
    u = by_arm[uniform]
    assert (u.labels, u.decided, u.found_error) == (3, 3, 1)
    assert u.mean_wrong_score == pytest.approx(0.3)
    assert (u.compared, u.disagreements) == (3, 0)
    assert u.error_interval == pytest.approx(wilson_interval(1, 3))


def test_imported_scores_have_no_predicted_first_error(campaign):
    generation = make_generation(campaign)
    label = _label(campaign, generation, Assignment.Arm.ACTIVE, [-1], ERROR)
    label.sample.verifier_score = 0.42
    label.sample.save(update_fields=["verifier_score"])

    [row] = arm_rows(campaign)
    assert row.mean_wrong_score == pytest.approx(0.42)
    assert (row.compared, row.disagreement_rate) == (0, None)


def test_gold_and_unfinished_work_stay_out(campaign, scored_generation):
    g = scored_generation
    qc = _label(campaign, g, Assignment.Arm.ACTIVE, [-1], ERROR, score=0.9)
    Label.objects.filter(pk=qc.pk).update(is_quality_control=True)
    open_label = _label(campaign, g, Assignment.Arm.UNIFORM, [1], SOLUTION, score=0.9)
    Label.objects.filter(pk=open_label.pk).update(finish_reason=None, finished_at=None)
    assert arm_rows(campaign) == []


def test_verdict_needs_intervals_that_do_not_overlap(campaign, scored_generation):
    g = scored_generation
    for _ in range(12):
        _label(campaign, g, Assignment.Arm.ACTIVE, [-1], ERROR, score=0.9, steps=[0.1])
    for _ in range(12):
        _label(campaign, g, Assignment.Arm.UNIFORM, [1], SOLUTION, score=0.4, steps=[0.9])
    [verdict] = generation_arms(arm_rows(campaign))
    assert verdict.verdict == "active finds more errors"

    # Two more uniform errors of few labels: the intervals now overlap.
    later = make_generation(campaign)
    later.checkpoint = g.checkpoint
    later.save(update_fields=["checkpoint"])
    _label(campaign, later, Assignment.Arm.ACTIVE, [-1], ERROR, score=0.9)
    _label(campaign, later, Assignment.Arm.UNIFORM, [-1], ERROR, score=0.9)
    newest, oldest = generation_arms(arm_rows(campaign))
    assert (newest.generation, oldest.generation) == (later.number, g.number)
    assert newest.verdict.startswith("cannot tell apart yet")


def test_lead_sees_the_panel_and_labelers_do_not(
    client, lead, labeler, campaign, scored_generation
):
    _label(campaign, scored_generation, Assignment.Arm.UNIFORM, [1, -1], ERROR, score=0.25)
    url = reverse("dashboard-arms", args=[campaign.slug])

    client.force_login(labeler)
    assert client.get(url).status_code == 403
    client.force_login(lead)
    page = client.get(url).content.decode()
    assert f'data-arm="{scored_generation.number}-uniform"' in page
    assert "0.250" in page  # the wrong sample's selector score
    fragment = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert fragment.lstrip().startswith("<section") and "data-arms-panel" in fragment
    # The campaign page loads the panel, with a plain link for browsers without htmx.
    campaign_page = client.get(reverse("dashboard-campaign", args=[campaign.slug])).content
    assert f'href="{url}"'.encode() in campaign_page


def test_anonymous_is_sent_to_login(client, campaign):
    url = reverse("dashboard-arms", args=[campaign.slug])
    response = client.get(url)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_wilson_interval_is_inside_zero_one_and_holds_the_share():
    assert wilson_interval(0, 0) is None
    low, high = wilson_interval(0, 5)
    assert low == 0.0 and 0 < high < 0.6
    low, high = wilson_interval(30, 40)
    assert low < 0.75 < high
    with pytest.raises(ValueError):
        wilson_interval(6, 5)


def test_a_generation_opened_with_a_control_arm_marks_its_slots(campaign):
    """Per problem with K = 2: 10 % of the generation's slots, not 10 % of 2 (which rounds to
    none), go to the uniform arm, and the assignments say which."""
    make_pool(campaign, n_problems=10, per_problem=6)
    Sample.objects.filter(campaign=campaign).update(verifier_score=0.5)
    Campaign.objects.filter(pk=campaign.pk).update(
        k=2, strategy=Campaign.Strategy.PER_PROBLEM, uniform_fraction=0.1
    )
    campaign.refresh_from_db()
    generation, _ = open_generation(campaign)
    arms = Counter(generation.assignments.values_list("arm", flat=True))
    assert sum(arms.values()) == 20 and arms[Assignment.Arm.UNIFORM] == 2


def test_checkpoint_page_shows_the_gate_on_the_uniform_arm(client, lead, campaign):
    gate = {
        "metric": "step_auc",
        "decision": "promoted",
        "candidate": {"step_auc": 0.81},
        "active": {"step_auc": 0.72},
        "uniform_arm": {"n_examples": 7, "candidate": {"step_auc": 0.777}, "active": {}},
    }
    checkpoint = Checkpoint.objects.create(
        campaign=campaign, name="gated", path="/nonexistent", metrics={"gate": gate}
    )
    client.force_login(lead)
    html = client.get(reverse("dashboard-checkpoint", args=[checkpoint.pk])).content.decode()
    assert "uniform control arm's labels (7 held-out solutions)" in html
    row = html.split('data-uniform-metric="step_auc"')[1].split("</tr>")[0]
    assert "0.7770" in row and "—" in row
