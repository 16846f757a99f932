"""The labeler queue: which assignment a labeler gets next, under row locks and leases.

`next_assignment(user)` hands out, in order:
1. the labeler's own in-progress assignment (their live lease; renewed on the way out);
2. screening items while the campaign requires screening (`quality.next_screening_item`);
3. a QC gold item at the campaign's `qc_rate` (`quality.maybe_qc_item`), only while the
   campaign still has regular work for this labeler, so QC hides among real tasks;
4. the oldest unclaimed open slot of the newest open generation of the campaigns the user
   labels for, skipping samples this labeler already had in any state. Gold samples (those
   with a `GoldStandard`, for QC or screening) are never handed out as regular work, even when
   a selection put them in a generation: they reach labelers only through the quality hooks.

Expired leases come back without anyone's action. A lease that ran out stays resumable by its
own labeler until someone else is handed work; the claim then treats it as available: it marks
the old assignment `expired` (its partial Label stays attached to it, nothing is deleted) and
creates a fresh assignment for the same sample and generation, claimed by the new labeler in
the same transaction. Because the takeover locks the stale row (SKIP LOCKED) and never leaves
an unclaimed copy behind, the work is never invisible to concurrent claimers, no label is
lost, overlap stays what the campaign asked for, and - as nobody is given a sample they ever
had - nobody gets the same sample twice. `expire_stale_leases` does the same for a periodic
sweep (re-opening unclaimed slots). QC and screening slots are per-labeler, so those are only
marked expired: the quality hooks serve gold afresh.

Locks: the asking user's row is locked first (one claim at a time per user, so two tabs
cannot take two tasks; the same query lists the user's campaigns, which may be a moment old
without harm, while everything read after it is current), then candidate slots with
`SELECT … FOR UPDATE OF assignment SKIP LOCKED` on PostgreSQL, so concurrent labelers pass
each other instead of queueing on the same row. SQLite has no row locks: there the whole claim
is one plain transaction. A regular claim costs six queries inside the transaction (lock and
campaigns, own lease, lapsed leases, queue head, the claim, the label).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from annotate import quality
from annotate.models import Assignment, Campaign, Generation, GoldStandard, Label

# Expired leases re-opened per sweep: bounded so one call never holds many locks.
SWEEP_LIMIT = 500


def _skip_locked() -> bool:
    return connection.features.has_select_for_update_skip_locked


def _lock(queryset: QuerySet) -> QuerySet:
    """Row locks on the assignment table only (never the joined generation rows)."""
    if _skip_locked():
        return queryset.select_for_update(skip_locked=True, of=("self",))
    return queryset


def _newest_open(campaign_ref: str):
    return (
        Generation.objects.filter(campaign=OuterRef(campaign_ref), status=Generation.Status.OPEN)
        .order_by("-id")
        .values("id")[:1]
    )


def campaigns_for(user, campaign: Campaign | None = None) -> list[Campaign]:
    """The campaigns whose work `user` may take, newest open generation first."""
    campaigns = Campaign.objects.filter(labelers=user)
    if campaign is not None:
        campaigns = campaigns.filter(pk=campaign.pk)
    return list(
        campaigns.annotate(newest_open=_newest_open("pk")).order_by(
            F("newest_open").desc(nulls_last=True), "id"
        )
    )


def _lock_user_and_list_campaigns(user, campaign: Campaign | None) -> list[Campaign]:
    """Lock the user's row (one claim at a time per user) and return `campaigns_for(user)`,
    in one query: the membership rows joined to the user, `FOR UPDATE OF` the user.

    The campaign columns come from the query's snapshot, taken before any wait for the lock:
    they may miss a change made a moment ago, which orders or configures one claim slightly
    differently but hands out nothing twice; every query after this one sees current data.
    A user on no campaign locks nothing and gets no regular work, only their own lease."""
    membership = Campaign.labelers.through.objects.filter(user=user)
    if campaign is not None:
        membership = membership.filter(campaign=campaign)
    rows = membership.select_related("campaign", "user").annotate(
        newest_open=_newest_open("campaign")
    )
    if _skip_locked():
        rows = rows.select_for_update(of=("user",))
    ordered = rows.order_by(F("newest_open").desc(nulls_last=True), "campaign_id")
    return [row.campaign for row in ordered]


def _candidates(user, campaign: Campaign | None) -> QuerySet[Assignment]:
    """Regular slots of open generations of the user's campaigns, minus samples they had,
    minus gold samples (served only as QC or screening, never as regular work)."""
    had = Assignment.objects.filter(labeler=user, sample=OuterRef("sample"))
    labeled = Label.objects.filter(labeler=user, sample=OuterRef("sample"))
    gold = GoldStandard.objects.filter(sample=OuterRef("sample"))
    campaigns = [campaign.pk] if campaign is not None else Campaign.objects.filter(labelers=user)
    return (
        Assignment.objects.filter(
            kind=Assignment.Kind.REGULAR,
            generation__status=Generation.Status.OPEN,
            generation__campaign__in=campaigns,
        )
        .exclude(Exists(had))
        .exclude(Exists(labeled))
        .exclude(Exists(gold))
    )


def _stale(now: datetime) -> Q:
    return Q(state=Assignment.State.IN_PROGRESS, lease_expires_at__lt=now)


def available(
    user, campaign: Campaign | None = None, now: datetime | None = None
) -> QuerySet[Assignment]:
    """Slots `user` could be given (unclaimed, or under a lapsed lease), in queue order."""
    now = now or timezone.now()
    unclaimed = Q(state=Assignment.State.OPEN, labeler__isnull=True)
    return (
        _candidates(user, campaign)
        .filter(unclaimed | _stale(now))
        .order_by("-generation__number", "-generation_id", "id")
    )


def available_count(user, campaign: Campaign | None = None) -> int:
    """Samples waiting for `user` (slots of one sample under overlap count once)."""
    if campaign is not None and not campaign.labelers.filter(pk=user.pk).exists():
        return 0
    return available(user, campaign).order_by().values("sample").distinct().count()


def lease_until(
    assignment: Assignment, now: datetime, campaign: Campaign | None = None
) -> datetime:
    """When a lease taken `now` ends (`campaign`: the assignment's, if already loaded)."""
    campaign = campaign or assignment.sample.campaign
    return now + timedelta(minutes=campaign.lease_minutes)


def claim(
    assignment: Assignment,
    user,
    now: datetime | None = None,
    *,
    campaign: Campaign | None = None,
    generation_number: int | None = None,
) -> Assignment:
    """Give `assignment` to `user` under a fresh lease and open its label.

    An unclaimed slot is claimed in place. A slot under a lapsed lease is taken over: the old
    one is marked `expired` (keeping its partial label) and a fresh one is claimed.
    `campaign` and `generation_number`, when the caller has them, save reading them again.
    """
    now = now or timezone.now()
    if assignment.state == Assignment.State.IN_PROGRESS:
        assignment.state = Assignment.State.EXPIRED
        assignment.save(update_fields=["state"])
        assignment = Assignment(
            generation_id=assignment.generation_id,
            sample_id=assignment.sample_id,
            kind=assignment.kind,
        )
    assignment.labeler = user
    assignment.state = Assignment.State.IN_PROGRESS
    assignment.claimed_at = now
    assignment.lease_expires_at = lease_until(assignment, now, campaign)
    if assignment.pk is None:
        assignment.save()
    else:
        assignment.save(update_fields=["labeler", "state", "claimed_at", "lease_expires_at"])
    Label.open_for(assignment, generation_number)
    return assignment


def expire_stale_leases(now: datetime | None = None, limit: int = SWEEP_LIMIT) -> int:
    """Mark in-progress assignments whose lease ran out `expired` and re-open their samples.

    Returns how many leases expired. For a periodic task: claims already take lapsed leases
    over themselves. Safe to run concurrently (locked rows are skipped).
    """
    now = now or timezone.now()
    with transaction.atomic():
        stale = list(
            _lock(
                Assignment.objects.filter(
                    state=Assignment.State.IN_PROGRESS, lease_expires_at__lt=now
                ).order_by("lease_expires_at", "id")
            )[:limit]
        )
        if not stale:
            return 0
        Assignment.objects.filter(pk__in=[a.pk for a in stale]).update(
            state=Assignment.State.EXPIRED
        )
        Assignment.objects.bulk_create(
            Assignment(generation_id=a.generation_id, sample_id=a.sample_id, kind=a.kind)
            for a in stale
            if a.kind == Assignment.Kind.REGULAR and a.generation_id is not None
        )
        return len(stale)


def _own_lease(user, campaign: Campaign | None, now: datetime) -> Assignment | None:
    """The labeler's in-progress assignment (even if its lease lapsed unswept), renewed."""
    mine = Assignment.objects.filter(labeler=user, state=Assignment.State.IN_PROGRESS)
    if campaign is not None:
        mine = mine.filter(sample__campaign=campaign)
    if _skip_locked():
        mine = mine.select_for_update(of=("self",))
    # Annotations, not select_related: compiling the joined columns costs more than the query.
    own = (
        mine.annotate(
            lease_minutes=F("sample__campaign__lease_minutes"),
            generation_number=F("generation__number"),
        )
        .order_by("claimed_at", "id")
        .first()
    )
    if own is None:
        return None
    own.lease_expires_at = now + timedelta(minutes=own.lease_minutes)
    own.save(update_fields=["lease_expires_at"])
    Label.open_for(own, own.generation_number)
    return own


def _served(item: Assignment | None, user) -> Assignment | None:
    """A gold item from the quality hooks, claimed for `user` with its label open."""
    if item is None:
        return None
    if item.labeler_id is None:
        return claim(item, user)
    if item.labeler_id != user.pk or item.state != Assignment.State.IN_PROGRESS:
        return None
    Label.open_for(item)
    return item


def _next_slot(user, campaign: Campaign, now: datetime) -> Assignment | None:
    """Locked: the oldest lapsed lease first (work coming back), else the queue's head.

    The slot carries its generation's number (`generation_number`) for its label."""
    candidates = _candidates(user, campaign).annotate(generation_number=F("generation__number"))
    stale = _lock(candidates.filter(_stale(now)).order_by("lease_expires_at", "id")).first()
    if stale is not None:
        return stale
    unclaimed = candidates.filter(state=Assignment.State.OPEN, labeler__isnull=True)
    return _lock(unclaimed.order_by("-generation__number", "-generation_id", "id")).first()


def _regular(user, campaign: Campaign, now: datetime, rng) -> Assignment | None:
    """QC at the campaign's rate while regular work remains, else the next regular slot."""
    candidate = _next_slot(user, campaign, now)
    if candidate is None:
        return None
    qc = _served(quality.maybe_qc_item(user, campaign, rng), user)
    if qc is not None:
        return qc
    return claim(
        candidate, user, now, campaign=campaign, generation_number=candidate.generation_number
    )


# Whole claims retried when a unique constraint fires (see `next_assignment`).
CLAIM_ATTEMPTS = 3


def next_assignment(
    user,
    campaign: Campaign | None = None,
    *,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> Assignment | None:
    """The assignment `user` should work on now, claimed for them; None when nothing is left.

    With `campaign`, only that campaign's work; a failed screening there raises
    `quality.ScreeningFailed`. Without it, campaigns whose screening the user failed are
    skipped.
    """
    now = now or timezone.now()
    for attempt in range(CLAIM_ATTEMPTS):
        try:
            return _next_assignment(user, campaign, now, rng)
        except IntegrityError:
            # A live assignment of the same sample reached this user from outside the queue
            # meanwhile (the user lock keeps the queue itself from doing so): the transaction
            # is rolled back whole, and the retry's candidate query no longer offers it.
            if attempt == CLAIM_ATTEMPTS - 1:
                raise
    return None


def _next_assignment(user, campaign: Campaign | None, now: datetime, rng) -> Assignment | None:
    with transaction.atomic():
        # One claim at a time per user: concurrent tabs get the same task, not two.
        campaigns = _lock_user_and_list_campaigns(user, campaign)
        own = _own_lease(user, campaign, now)
        if own is not None:
            return own
        for each in campaigns:
            try:
                screening = _served(quality.next_screening_item(user, each), user)
            except quality.ScreeningFailed:
                if campaign is not None:
                    raise
                continue
            if screening is not None:
                return screening
            item = _regular(user, each, now, rng)
            if item is not None:
                return item
    return None
