"""The labeler queue: order, leases, overlap, expiry, and the quality hooks."""

import random
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from annotate import quality
from annotate.models import Assignment, GoldStandard, Label, ScreeningResult
from annotate.queue import available_count, expire_stale_leases, next_assignment
from tests.factories import (
    make_generation,
    make_sample,
    open_slots,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(labeler, campaign):
    campaign.labelers.add(labeler)
    return labeler


def _user(name, campaign=None):
    user = get_user_model().objects.create_user(name)
    if campaign is not None:
        campaign.labelers.add(user)
    return user


def test_claim_takes_the_oldest_slot_of_the_newest_open_generation(member, campaign):
    old = make_generation(campaign, 0)
    new = make_generation(campaign, 1)
    make_generation(campaign, 2, status="scoring")  # not open: never served
    old_slots = open_slots(old, [make_sample(campaign)])
    new_slots = open_slots(new, [make_sample(campaign), make_sample(campaign)])
    before = timezone.now()

    got = next_assignment(member)

    assert got.pk == new_slots[0].pk
    got.refresh_from_db()
    assert got.labeler == member and got.state == Assignment.State.IN_PROGRESS
    assert got.claimed_at >= before
    expected_lease = got.claimed_at + timedelta(minutes=campaign.lease_minutes)
    assert abs((got.lease_expires_at - expected_lease).total_seconds()) < 1
    label = Label.objects.get(assignment=got)
    assert (label.labeler, label.sample_id, label.prm800k_generation) == (member, got.sample_id, 1)

    got.label.finish("give_up")
    assert next_assignment(member).pk == new_slots[1].pk
    Label.objects.get(assignment_id=new_slots[1].pk).finish("give_up")
    assert next_assignment(member).pk == old_slots[0].pk  # older open generations come next


def test_own_live_lease_comes_first_and_is_renewed(member, campaign):
    open_slots(make_generation(campaign), [make_sample(campaign), make_sample(campaign)])
    first = next_assignment(member)
    Assignment.objects.filter(pk=first.pk).update(
        lease_expires_at=timezone.now() + timedelta(minutes=1)
    )
    again = next_assignment(member)
    assert again.pk == first.pk
    again.refresh_from_db()
    assert again.lease_expires_at > timezone.now() + timedelta(minutes=campaign.lease_minutes - 1)
    assert Assignment.objects.filter(labeler=member).count() == 1


def test_only_campaigns_the_user_labels_for(labeler, campaign):
    open_slots(make_generation(campaign), [make_sample(campaign)])
    assert next_assignment(labeler) is None  # not on the campaign
    assert available_count(labeler) == 0
    campaign.labelers.add(labeler)
    assert available_count(labeler) == 1
    assert next_assignment(labeler) is not None


def test_overlap_gives_each_sample_to_distinct_labelers(campaign):
    campaign.overlap = 2
    campaign.save()
    a, b, c = (_user(n, campaign) for n in "abc")
    sample = make_sample(campaign)
    open_slots(make_generation(campaign), [sample], overlap=2)

    got_a = next_assignment(a)
    assert got_a.sample == sample
    got_a.label.finish("give_up")
    assert next_assignment(a) is None  # never the same sample twice, even with a slot left
    got_b = next_assignment(b)
    assert got_b.sample == sample and got_b.pk != got_a.pk
    assert next_assignment(c) is None  # both slots taken


def test_expired_lease_goes_back_to_the_queue_without_losing_the_label(campaign):
    a, b = _user("a", campaign), _user("b", campaign)
    sample = make_sample(campaign)
    generation = make_generation(campaign)
    open_slots(generation, [sample])
    held = next_assignment(a)
    held.label.rate(0, 1)
    Assignment.objects.filter(pk=held.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    got = next_assignment(b)  # nobody acted on the lease: asking for work brings it back

    assert got is not None and got.pk != held.pk
    assert got.sample == sample and got.labeler == b and got.generation == generation
    held.refresh_from_db()
    assert held.state == Assignment.State.EXPIRED
    kept = Label.objects.get(assignment=held)
    assert kept.labeler == a and list(kept.ratings.values_list("step", "rating")) == [(0, 1)]
    assert Label.objects.get(assignment=got).ratings.count() == 0  # b starts clean
    assert next_assignment(a) is None  # a never gets that sample again


def test_owner_resumes_a_lapsed_lease_nobody_took(member, campaign):
    open_slots(make_generation(campaign), [make_sample(campaign)])
    held = next_assignment(member)
    Assignment.objects.filter(pk=held.pk).update(
        lease_expires_at=timezone.now() - timedelta(minutes=5)
    )
    again = next_assignment(member)
    assert again.pk == held.pk
    again.refresh_from_db()
    assert again.state == Assignment.State.IN_PROGRESS
    assert again.lease_expires_at > timezone.now()


def test_expire_stale_leases_reopens_regular_slots_only(campaign, labeler):
    generation = make_generation(campaign)
    past = timezone.now() - timedelta(minutes=1)
    regular = Assignment.objects.create(
        generation=generation,
        sample=make_sample(campaign),
        labeler=labeler,
        state="in_progress",
        lease_expires_at=past,
    )
    Assignment.objects.create(
        generation=generation,
        sample=make_sample(campaign),
        labeler=labeler,
        kind="qc",
        state="in_progress",
        lease_expires_at=past,
    )
    live = Assignment.objects.create(
        generation=generation,
        sample=make_sample(campaign),
        labeler=labeler,
        state="in_progress",
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )
    assert expire_stale_leases() == 2
    assert expire_stale_leases() == 0
    assert Assignment.objects.filter(state="expired").count() == 2
    reopened = Assignment.objects.unclaimed()
    assert [(a.sample_id, a.kind) for a in reopened] == [(regular.sample_id, "regular")]
    live.refresh_from_db()
    assert live.state == "in_progress"


def test_qc_items_are_served_at_the_qc_rate_among_regular_work(member, campaign):
    campaign.qc_rate = 1.0
    campaign.save()
    generation = make_generation(campaign)
    gold_sample = make_sample(campaign)
    GoldStandard.objects.create(
        sample=gold_sample, purpose="qc", ratings=[1, -1], finish_reason="found_error"
    )
    open_slots(generation, [make_sample(campaign)])

    qc = next_assignment(member, rng=random.Random(0))
    assert qc.kind == Assignment.Kind.QUALITY_CONTROL and qc.sample == gold_sample
    assert Label.objects.get(assignment=qc).is_quality_control
    qc.label.finish("give_up")
    regular = next_assignment(member, rng=random.Random(0))
    assert regular.kind == Assignment.Kind.REGULAR  # gold used up: regular work


def test_no_qc_item_once_regular_work_is_gone(member, campaign):
    campaign.qc_rate = 1.0
    campaign.save()
    make_generation(campaign)
    GoldStandard.objects.create(
        sample=make_sample(campaign), purpose="qc", ratings=[1], finish_reason="solution"
    )
    assert next_assignment(member) is None


def test_screening_comes_first_and_failure_blocks_the_campaign(member, campaign):
    campaign.screening_required = True
    campaign.save()
    gold = make_sample(campaign)
    GoldStandard.objects.create(
        sample=gold, purpose="screening", ratings=[1, -1], finish_reason="found_error"
    )
    open_slots(make_generation(campaign), [make_sample(campaign)])

    item = next_assignment(member)
    assert item.kind == Assignment.Kind.SCREENING and item.sample == gold
    assert Label.objects.get(assignment=item).prm800k_generation == -1

    item.label.finish("give_up")  # disagrees with gold: the verdict is a fail
    assert next_assignment(member) is None
    assert ScreeningResult.objects.get(labeler=member).status == "failed"
    with pytest.raises(quality.ScreeningFailed):
        next_assignment(member, campaign)


def test_passed_screening_opens_regular_work(member, campaign):
    campaign.screening_required = True
    campaign.save()
    ScreeningResult.objects.create(
        campaign=campaign, labeler=member, status="passed", agreement=1.0, items=1
    )
    regular = open_slots(make_generation(campaign), [make_sample(campaign)])
    assert next_assignment(member).pk == regular[0].pk
