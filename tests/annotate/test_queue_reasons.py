"""Each claim records why the queue served it (`Assignment.reason`)."""

import random
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from annotate.models import Assignment, GoldStandard
from annotate.queue import next_assignment
from tests.factories import make_generation, make_sample, open_slots

pytestmark = pytest.mark.django_db

Reason = Assignment.Reason


@pytest.fixture
def member(labeler, campaign):
    campaign.labelers.add(labeler)
    return labeler


def _stored_reason(assignment: Assignment) -> str:
    return Assignment.objects.get(pk=assignment.pk).reason


def test_a_regular_slot_is_claimed_as_regular_and_resuming_keeps_it(member, campaign):
    slot = open_slots(make_generation(campaign), [make_sample(campaign)])[0]
    assert slot.reason == ""
    got = next_assignment(member)
    assert (got.pk, got.reason, _stored_reason(got)) == (slot.pk, Reason.REGULAR, Reason.REGULAR)
    assert next_assignment(member).pk == got.pk  # the own lease, resumed
    assert _stored_reason(got) == Reason.REGULAR


def test_a_lapsed_lease_taken_over_says_so(member, campaign):
    open_slots(make_generation(campaign), [make_sample(campaign)])
    first = get_user_model().objects.create_user("first")
    campaign.labelers.add(first)
    held = next_assignment(first)
    Assignment.objects.filter(pk=held.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    got = next_assignment(member)
    assert got.pk != held.pk and _stored_reason(got) == Reason.LAPSED_LEASE


def test_gold_is_claimed_as_qc_or_screening(member, campaign):
    campaign.qc_rate = 1.0
    campaign.screening_required = True
    campaign.save()
    screening, qc = make_sample(campaign), make_sample(campaign)
    GoldStandard.objects.create(
        sample=screening, purpose="screening", ratings=[1, 1, 1, 1], finish_reason="solution"
    )
    GoldStandard.objects.create(
        sample=qc, purpose="qc", ratings=[1, 1, 1, 1], finish_reason="solution"
    )
    open_slots(make_generation(campaign), [make_sample(campaign)])

    first = next_assignment(member, rng=random.Random(0))
    assert (first.sample_id, _stored_reason(first)) == (screening.pk, Reason.SCREENING)
    for step in range(4):
        first.label.rate(step, 1)
    second = next_assignment(member, rng=random.Random(0))
    assert (second.sample_id, _stored_reason(second)) == (qc.pk, Reason.QUALITY_CONTROL)
