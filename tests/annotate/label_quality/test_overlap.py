"""Overlap 2 through the queue, and agreement per sample, labeler and generation."""

import pytest
from django.urls import reverse

from annotate.agreement import label_views, overlap_report, sample_agreement
from annotate.models import Label
from annotate.queue import next_assignment
from tests.factories import finished_label, make_generation, open_slots, overlap_campaign, person

pytestmark = pytest.mark.django_db


def test_overlap_two_labels_each_sample_by_two_labelers_through_the_queue(campaign):
    generation, samples = overlap_campaign(campaign)
    open_slots(generation, samples[:2], overlap=campaign.overlap)
    a, b, c = (person(name, campaign) for name in "abc")
    for user in (a, b):
        for _ in range(2):
            got = next_assignment(user)
            got.label.rate(0, 1)
            got.label.rate(1, -1)
    assert next_assignment(c) is None  # two slots per sample, both taken
    labels = Label.objects.for_campaign(campaign).finished()
    assert sorted(labels.values_list("sample_id", "labeler_id")) == sorted(
        (s.pk, u.pk) for s in samples[:2] for u in (a, b)
    )
    report = overlap_report(campaign)
    assert report.total.samples == 2 and report.total.first_error_rate == 1.0


def test_agreement_per_sample_labeler_and_generation(campaign):
    generation, samples = overlap_campaign(campaign)
    later = make_generation(campaign, 1)
    a, b, c = (person(name, campaign) for name in "abc")
    # Sample 0: a and b both find the error at step 2.
    finished_label(a, samples[0], generation, [1, -1], "found_error")
    finished_label(b, samples[0], generation, [1, -1], "found_error")
    # Sample 1: a finds none, b finds one at step 3, c agrees with a.
    finished_label(a, samples[1], generation, [1, 1, 1, 1], "solution")
    finished_label(b, samples[1], generation, [1, 1, -1], "found_error")
    finished_label(c, samples[1], generation, [1, 0, 1, 1], "solution")
    # Sample 2 (generation 1): a's −1 at step 1 against c's neutral then +1.
    finished_label(a, samples[2], later, [-1], "found_error")
    finished_label(c, samples[2], later, [0, 1, 1, 1], "solution")
    # Sample 3: one label only, not an overlap.
    finished_label(b, samples[3], later, [1, 1, 1, 1], "solution")

    report = overlap_report(campaign)
    # Pairs: sample 0 one agreeing; sample 1 three, one agreeing (a–c); sample 2 one, none.
    assert report.total.samples == 3 and report.total.labels == 7
    assert (report.total.pairs.pairs, report.total.pairs.agree) == (5, 2)
    assert report.total.agreeing == 1
    assert report.by_generation[0].pairs.rate == pytest.approx(2 / 4)
    assert report.by_generation[1].pairs.rate == 0.0
    # a: with b on 0 (agree), b and c on 1 (1 of 2), c on 2 (no) → 2 of 4.
    assert report.by_labeler[a.pk].pairs.rate == pytest.approx(2 / 4)
    # b: a on 0 (agree), a and c on 1 (no, no) → 1 of 3.
    assert report.by_labeler[b.pk].pairs.rate == pytest.approx(1 / 3)
    assert report.by_labeler[c.pk].pairs.rate == pytest.approx(1 / 3)
    assert report.total.alpha is not None and -1 <= report.total.alpha < 1

    one = sample_agreement(label_views(Label.objects.filter(sample=samples[1])))
    assert (one.pairs.pairs, one.pairs.agree, one.agreeing) == (3, 1, 0)


def test_dashboard_panel_shows_agreement_per_generation_and_labeler(client, lead, campaign):
    generation, samples = overlap_campaign(campaign)
    a, b = person("ann", campaign), person("bob", campaign)
    finished_label(a, samples[0], generation, [1, -1], "found_error")
    finished_label(b, samples[0], generation, [1, 1, -1], "found_error")
    finished_label(a, samples[1], generation, [1, 1, 1, 1], "solution")
    finished_label(b, samples[1], generation, [1, 1, 1, 1], "solution")
    client.force_login(lead)
    page = client.get(reverse("dashboard-campaign", args=[campaign.slug])).content.decode()
    assert reverse("review-agreement", args=[campaign.slug]) in page  # loaded by htmx
    panel = client.get(reverse("review-agreement", args=[campaign.slug])).content.decode()
    assert 'data-overlap-generation="Generation 0"' in panel
    assert 'data-overlap-labeler="ann"' in panel and 'data-overlap-labeler="bob"' in panel
    assert "50%" in panel  # one of the two pairs agrees


def test_agreement_panel_is_for_leads_only(client, labeler, campaign):
    client.force_login(labeler)
    assert client.get(reverse("review-agreement", args=[campaign.slug])).status_code == 403
