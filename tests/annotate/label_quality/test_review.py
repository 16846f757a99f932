"""The review queue: what comes up, the three decisions, and what exports and training see."""

import io
import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from annotate import review
from annotate.io.prm800k import iter_prm800k_lines
from annotate.io.stepwise import iter_stepwise_records
from annotate.models import Assignment, Label, QualitySettings, Review, StepRating
from tests.factories import finished_label, overlap_campaign, person
from workers.training_data import campaign_training_examples

pytestmark = pytest.mark.django_db


@pytest.fixture
def labeled(campaign):
    """Sample 0: two agreeing labels; sample 1: two disagreeing; sample 2: one label with a
    flagged step; sample 3: one plain label."""
    generation, samples = overlap_campaign(campaign)
    a, b = person("a", campaign), person("b", campaign)
    labels = {
        "agree_a": finished_label(a, samples[0], generation, [1, 1, 1, 1], "solution"),
        "agree_b": finished_label(b, samples[0], generation, [1, 0, 1, 1], "solution"),
        "error_a": finished_label(a, samples[1], generation, [1, -1], "found_error"),
        "clean_b": finished_label(b, samples[1], generation, [1, 1, 1, 1], "solution"),
        "flagged": finished_label(
            a, samples[2], generation, [1, 1, -1], "found_error", flagged=[1]
        ),
        "plain": finished_label(b, samples[3], generation, [1, 1, 1, 1], "solution"),
    }
    return campaign, generation, samples, labels


def exported(campaign, **options) -> list[dict]:
    return [json.loads(line) for line in iter_prm800k_lines(campaign, **options)]


def trained_ratings(campaign) -> list[list[int]]:
    return sorted(e.ratings for e in campaign_training_examples(campaign))


def test_disagreements_and_flagged_steps_come_up_for_review(labeled):
    campaign, _, samples, labels = labeled
    assert review.refresh_reviews(campaign) == 2
    reviews = {r.sample_id: r for r in review.review_queue(campaign)}
    assert set(reviews) == {samples[1].pk, samples[2].pk}
    assert reviews[samples[1].pk].reason == Review.Reason.DISAGREEMENT
    assert set(reviews[samples[1].pk].labels.values_list("id", flat=True)) == {
        labels["error_a"].pk,
        labels["clean_b"].pk,
    }
    assert reviews[samples[2].pk].reason == Review.Reason.FLAGGED
    assert review.refresh_reviews(campaign) == 0  # idempotent


def test_review_rate_samples_labels_with_a_stable_draw(labeled):
    campaign, *_ = labeled
    QualitySettings.objects.create(campaign=campaign, review_rate=1.0)
    assert review.refresh_reviews(campaign) == 4  # every sample: rate 1 draws every label
    assert [review.drawn(i, 0.5) for i in range(50)] == [review.drawn(i, 0.5) for i in range(50)]
    assert 10 < sum(review.drawn(i, 0.5) for i in range(100)) < 90
    assert not any(review.drawn(i, 0.0) for i in range(100))


def test_unresolved_disagreements_are_in_the_export_unless_excluded(labeled):
    campaign, _, _samples, _labels = labeled
    assert len(exported(campaign)) == 6
    kept = exported(campaign, include_unresolved=False)
    assert len(kept) == 4
    out = io.StringIO()
    call_command("export_prm800k", "--campaign", campaign.slug, "--exclude-unresolved", stdout=out)
    assert len(out.getvalue().splitlines()) == 4


def test_accepting_a_label_is_what_exports_and_training_see(labeled, lead):
    campaign, _, samples, labels = labeled
    review.refresh_reviews(campaign)
    item = Review.objects.get(sample=samples[1])
    before = trained_ratings(campaign)
    assert [1, -1] in before and [1, 1, 1, 1] in before

    review.accept(item, labels["error_a"], lead)

    records = exported(campaign, include_unresolved=False)
    assert len(records) == 5  # b's label of sample 1 is superseded, nothing unresolved
    steps = [[c["completions"][0]["rating"] for c in r["label"]["steps"]] for r in records]
    assert steps.count([1, -1]) == 1
    after = trained_ratings(campaign)
    assert (
        len(after) == len(before) - 1
        and after.count([1, 1, 1, 1]) == before.count([1, 1, 1, 1]) - 1
    )
    stepwise = list(iter_stepwise_records(campaign))
    assert len(stepwise) == 5
    with pytest.raises(review.ReviewClosed):
        review.accept(item, labels["clean_b"], lead)  # decided once


def test_a_correction_is_a_new_label_and_keeps_the_originals(labeled, lead):
    campaign, _, samples, labels = labeled
    review.refresh_reviews(campaign)
    item = Review.objects.get(sample=samples[2])
    correction = review.correct(item, [1, 1, 1, -1], "found_error", lead)

    assert correction.labeler == lead and correction.pk != labels["flagged"].pk
    assert list(correction.ratings.values_list("rating", flat=True)) == [1, 1, 1, -1]
    assert Label.objects.filter(pk=labels["flagged"].pk).exists()  # the original stays
    assert StepRating.objects.filter(label=labels["flagged"], flagged=True).exists()
    item.refresh_from_db()
    assert item.state == Review.State.CORRECTED and item.chosen == correction
    records = exported(campaign)
    ratings = [[c["completions"][0]["rating"] for c in r["label"]["steps"]] for r in records]
    assert [1, 1, 1, -1] in ratings and [1, 1, -1] not in ratings
    assert [1, 1, 1, -1] in trained_ratings(campaign)
    QualitySettings.objects.create(campaign=campaign, review_rate=1.0)
    assert review.refresh_reviews(campaign) == 2  # samples 0 and 3; not the correction
    assert not Review.objects.filter(labels=correction).exists()


def test_a_correction_follows_the_labeling_rules(labeled, lead):
    campaign, _, samples, _ = labeled
    review.refresh_reviews(campaign)
    item = Review.objects.get(sample=samples[2])
    with pytest.raises(review.ValidationError):
        review.correct(item, [1, -1, 1], "found_error", lead)  # a rating after the error
    item.refresh_from_db()
    assert item.state == Review.State.OPEN


def test_rejecting_sends_the_sample_back_to_the_queue(labeled, lead):
    campaign, generation, samples, labels = labeled
    review.refresh_reviews(campaign)
    item = Review.objects.get(sample=samples[1])
    assert review.reject(item, lead) == campaign.overlap
    open_slots = Assignment.objects.unclaimed().filter(sample=samples[1], generation=generation)
    assert open_slots.count() == 2
    assert len(exported(campaign)) == 4  # both labels of sample 1 are out
    assert [1, -1] not in trained_ratings(campaign)
    assert Label.objects.filter(pk__in=[labels["error_a"].pk, labels["clean_b"].pk]).count() == 2


def test_review_pages_are_for_leads_only(client, labeled, labeler):
    campaign, _, samples, labels = labeled
    review.refresh_reviews(campaign)
    item = Review.objects.get(sample=samples[1])
    urls = [
        reverse("review-queue", args=[campaign.slug]),
        reverse("review-item", args=[item.pk]),
    ]
    for url in urls:
        assert client.get(url).status_code == 302  # anonymous: the login page
    client.force_login(labeler)
    for url in urls:
        assert client.get(url).status_code == 403
    for action in ("review-accept", "review-correct", "review-reject"):
        response = client.post(reverse(action, args=[item.pk]), {"label": labels["error_a"].pk})
        assert response.status_code == 403
    item.refresh_from_db()
    assert item.state == Review.State.OPEN


def test_review_posts_need_the_csrf_token(labeled, lead):
    from django.test import Client

    campaign, _, samples, labels = labeled
    review.refresh_reviews(campaign)
    item = Review.objects.get(sample=samples[1])
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(lead)
    url = reverse("review-accept", args=[item.pk])
    assert strict.post(url, {"label": labels["error_a"].pk}).status_code == 403
    item.refresh_from_db()
    assert item.state == Review.State.OPEN


def test_a_lead_decides_on_the_page_and_moves_to_the_next_review(client, labeled, lead):
    campaign, _, _samples, _labels = labeled
    client.force_login(lead)
    page = client.get(reverse("review-queue", args=[campaign.slug]))
    assert page.status_code == 200 and page.content.decode().count("data-review=") == 2
    first, second = review.review_queue(campaign)
    page = client.get(reverse("review-item", args=[first.pk])).content.decode()
    assert 'data-accept="1"' in page and 'data-accept="2"' in page
    response = client.post(
        reverse("review-accept", args=[first.pk]),
        {"label": first.labels.order_by("id").first().pk},
        HTTP_HX_REQUEST="true",
    )
    assert response.headers["HX-Redirect"] == reverse("review-item", args=[second.pk])
    response = client.post(
        reverse("review-correct", args=[second.pk]),
        {"step_0": "1", "step_1": "-1", "step_2": "1", "finish_reason": "found_error"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200 and "data-error" in response.content.decode()
    response = client.post(reverse("review-reject", args=[second.pk]))
    assert response.status_code == 302
    assert response.url == reverse("review-queue", args=[campaign.slug])
    assert not review.review_queue(campaign).exists()


def test_processbench_export_takes_the_resolved_labels(labeled, lead):
    campaign, _, samples, labels = labeled
    review.refresh_reviews(campaign)
    out = io.StringIO()
    call_command("export_processbench", "--campaign", campaign.slug, stdout=out)
    records = {r["id"]: r for r in map(json.loads, out.getvalue().splitlines())}
    # Sample 1's labels disagree and no review settled them: left out.
    assert set(records) == {samples[0].external_id, samples[2].external_id, samples[3].external_id}
    assert records[samples[0].external_id]["label"] == -1
    assert records[samples[2].external_id]["label"] == 2
    record = records[samples[3].external_id]
    assert record == {
        "id": samples[3].external_id,
        "problem": samples[3].problem.problem,
        "steps": samples[3].steps,
        "label": -1,
        "final_answer_correct": False,
    }
    review.accept(Review.objects.get(sample=samples[1]), labels["error_a"], lead)
    out = io.StringIO()
    call_command("export_processbench", "--campaign", campaign.slug, stdout=out)
    records = {r["id"]: r for r in map(json.loads, out.getvalue().splitlines())}
    assert records[samples[1].external_id]["label"] == 1
