"""The labeler queue: which assignment a labeler gets next, under row locks and leases.

`next_assignment(user)` hands out, in order (a write: the queue page claims on POST only;
`held_assignment` is the read-only look a GET may do):
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
cannot take two tasks), then candidate slots with `SELECT … FOR UPDATE OF assignment SKIP
LOCKED` on PostgreSQL, so concurrent labelers pass each other instead of queueing on the same
row. SQLite has no row locks: there the whole claim is one plain transaction.

Hints: the query that locks the user also lists their campaigns and tells, from its
snapshot, whether the user holds work and whether lapsed leases wait (`CampaignHints`), so the
own-lease and lapsed-lease queries run only when needed; a claim that trusted "idle" re-checks
it inside its own UPDATE and starts over if a concurrent tab was first (`_Conflict`). Each
claim records why it was served in `Assignment.reason`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
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
    """The id of the campaign's open generation that comes first in queue order."""
    return (
        Generation.objects.filter(campaign=OuterRef(campaign_ref), status=Generation.Status.OPEN)
        .order_by("-number", "-id")
        .values("id")[:1]
    )


def _live_of(user, campaign: Campaign | None) -> QuerySet[Assignment]:
    """The user's in-progress assignments (in `campaign`, when the claim is for one)."""
    mine = Assignment.objects.for_labeler(user).filter(state=Assignment.State.IN_PROGRESS)
    if campaign is not None:
        mine = mine.filter(sample__campaign=campaign)
    return mine


class _Conflict(Exception):
    """A claim found the user already holding work its first query did not show: roll the
    claim back and run it again with a fresh look (see `_next_assignment`)."""


@dataclass(frozen=True)
class CampaignHints:
    """A campaign whose work the user may take, as the claim's first query saw it."""

    campaign: Campaign
    # The campaign's open generation that comes first in queue order, if any.
    newest_open: int | None
    # Whether a lapsed lease may wait in one of its open generations.
    has_stale: bool


def _lock_user_and_list_campaigns(
    user, campaign: Campaign | None, now: datetime
) -> tuple[list[CampaignHints], bool | None]:
    """Lock the user's row (one claim at a time per user) and list the campaigns they label
    for (only `campaign`, if given), newest open generation first: the membership rows joined
    to the user, `FOR UPDATE OF` the user.

    Returns the campaigns' hints and whether the user holds an in-progress assignment (None
    when they are on no campaign, so there was no row to tell). All of these come from the
    query's snapshot, taken before any wait for the lock, so they are hints: a campaign
    setting a moment old changes nothing that matters, a lapsed lease is looked for again,
    and a claim that believed the user idle re-checks that in its writes (`_Conflict`).
    Every query after this one sees current data."""
    membership = Campaign.labelers.through.objects.filter(user=user)
    if campaign is not None:
        membership = membership.filter(campaign=campaign)
    lapsed = Assignment.objects.filter(
        _stale(now),
        kind=Assignment.Kind.REGULAR,
        generation__campaign=OuterRef("campaign"),
        generation__status=Generation.Status.OPEN,
    )
    rows = membership.select_related("campaign", "user").annotate(
        newest_open=_newest_open("campaign"),
        has_stale=Exists(lapsed),
        busy=Exists(_live_of(user, campaign)),
    )
    if _skip_locked():
        rows = rows.select_for_update(of=("user",))
    hints = []
    busy = None
    for row in rows.order_by(F("newest_open").desc(nulls_last=True), "campaign_id"):
        hints.append(CampaignHints(row.campaign, row.newest_open, row.has_stale))
        busy = row.busy
    return hints, busy


def _candidates(user, campaign: Campaign | None) -> QuerySet[Assignment]:
    """Regular slots of open generations of the user's campaigns, minus samples they had,
    minus gold samples (served only as QC or screening, never as regular work)."""
    had = Assignment.objects.for_labeler(user).filter(sample=OuterRef("sample"))
    labeled = Label.objects.for_labeler(user).filter(sample=OuterRef("sample"))
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
    unless_busy: QuerySet[Assignment] | None = None,
) -> Assignment:
    """Give `assignment` to `user` under a fresh lease and open its label.

    An unclaimed slot is claimed in place. A slot under a lapsed lease is taken over: the old
    one is marked `expired` (keeping its partial label) and a fresh one is claimed, with
    `reason` saying so.
    `campaign` and `generation_number`, when the caller has them, save reading them again.
    With `unless_busy`, the first write also checks that this queryset is empty (a `NOT
    EXISTS` in its WHERE, so no extra query) and raises `_Conflict` when it is not.
    """
    now = now or timezone.now()
    first_write = Assignment.objects.filter(pk=assignment.pk)
    if unless_busy is not None:
        first_write = first_write.exclude(Exists(unless_busy))
    lease = lease_until(assignment, now, campaign)
    if assignment.state == Assignment.State.IN_PROGRESS:
        expired = first_write.filter(state=Assignment.State.IN_PROGRESS).update(
            state=Assignment.State.EXPIRED
        )
        if not expired:
            raise _Conflict()
        assignment.state = Assignment.State.EXPIRED
        assignment = Assignment(
            generation_id=assignment.generation_id,
            sample_id=assignment.sample_id,
            kind=assignment.kind,
            labeler=user,
            state=Assignment.State.IN_PROGRESS,
            reason=Assignment.Reason.LAPSED_LEASE,
            claimed_at=now,
            lease_expires_at=lease,
        )
        assignment.save()
    else:
        reason = Assignment.reason_for(assignment.kind)
        claimed = first_write.update(
            labeler=user,
            state=Assignment.State.IN_PROGRESS,
            reason=reason,
            claimed_at=now,
            lease_expires_at=lease,
        )
        if not claimed:
            raise _Conflict()
        assignment.labeler = user
        assignment.state = Assignment.State.IN_PROGRESS
        assignment.reason = reason
        assignment.claimed_at = now
        assignment.lease_expires_at = lease
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
            _lock(Assignment.objects.filter(_stale(now)).order_by("lease_expires_at", "id"))[:limit]
        )
        if not stale:
            return 0
        return Assignment.objects.filter(pk__in=[a.pk for a in stale]).release()


def held_assignment(user, campaign: Campaign | None = None) -> Assignment | None:
    """The labeler's in-progress assignment (in `campaign`, if given), read only: what a
    GET of the queue resumes without claiming or renewing anything."""
    return _live_of(user, campaign).order_by("claimed_at", "id").first()


def _own_lease(user, campaign: Campaign | None, now: datetime) -> Assignment | None:
    """The labeler's in-progress assignment (even if its lease lapsed unswept), renewed."""
    mine = _live_of(user, campaign)
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


def _served(item: Assignment | None, user, unless_busy=None) -> Assignment | None:
    """A gold item from the quality hooks, claimed for `user` with its label open.

    `unless_busy` (see `claim`): the user must hold nothing else in progress."""
    if item is None:
        return None
    if item.labeler_id is None:
        return claim(item, user, unless_busy=unless_busy)
    if item.labeler_id != user.pk or item.state != Assignment.State.IN_PROGRESS:
        return None
    if unless_busy is not None and unless_busy.exclude(pk=item.pk).exists():
        raise _Conflict()
    Label.open_for(item)
    return item


def _next_slot(user, hints: CampaignHints, now: datetime) -> Assignment | None:
    """Locked: the oldest lapsed lease first (work coming back), else the queue's head.

    The queue is read one open generation at a time, newest first, in slot order: a walk
    along the `assignment_unclaimed_queue` index (generation, id) that stops at the first slot
    this user may take, instead of sorting every open slot of the campaign on each claim.
    `hints.newest_open` (from the claim's first query) names the generation to try first.
    The slot carries its generation's number (`generation_number`) for its label."""
    campaign = hints.campaign
    candidates = _candidates(user, campaign).annotate(generation_number=F("generation__number"))
    if hints.has_stale:
        stale = _lock(candidates.filter(_stale(now)).order_by("lease_expires_at", "id")).first()
        if stale is not None:
            return stale
    unclaimed = candidates.unclaimed()
    newest = hints.newest_open
    if newest is not None:
        slot = _lock(_queue_of(unclaimed, newest)).first()
        if slot is not None:
            return slot
    older = (
        Generation.objects.filter(campaign=campaign, status=Generation.Status.OPEN)
        .exclude(pk=newest)
        .order_by("-number", "-id")
        .values_list("pk", flat=True)
    )
    for generation_id in older:
        slot = _lock(_queue_of(unclaimed, generation_id)).first()
        if slot is not None:
            return slot
    return None


def _queue_of(unclaimed: QuerySet[Assignment], generation_id: int) -> QuerySet[Assignment]:
    """One generation's unclaimed slots in queue order, read along its queue index.

    The generation is pinned with a range, not `=`: with `=` the planner may walk the primary
    key instead (the same order once the generation is fixed), which filters out every slot
    claimed so far on each claim, since claimed slots all sit at the head of the id order and
    the statistics cannot tell; with a range only the (generation, id) index gives the order.
    """
    pinned = unclaimed.filter(generation_id__gte=generation_id, generation_id__lte=generation_id)
    return pinned.order_by("generation_id", "id")


def _regular(user, hints: CampaignHints, now: datetime, rng, unless_busy) -> Assignment | None:
    """QC at the campaign's rate while regular work remains, else the next regular slot."""
    candidate = _next_slot(user, hints, now)
    if candidate is None:
        return None
    campaign = hints.campaign
    qc = _served(quality.maybe_qc_item(user, campaign, rng), user, unless_busy)
    if qc is not None:
        return qc
    return claim(
        candidate,
        user,
        now,
        campaign=campaign,
        generation_number=candidate.generation_number,
        unless_busy=unless_busy,
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
    trust_hint = True
    for attempt in range(CLAIM_ATTEMPTS):
        try:
            return _next_assignment(user, campaign, now, rng, trust_hint)
        except _Conflict:
            # A concurrent request of the same user (another tab) claimed work after this
            # claim's first query took its snapshot: look again, this time for certain.
            trust_hint = False
        except IntegrityError:
            # A live assignment of the same sample reached this user from outside the queue
            # meanwhile (the user lock keeps the queue itself from doing so): the transaction
            # is rolled back whole, and the retry's candidate query no longer offers it.
            if attempt == CLAIM_ATTEMPTS - 1:
                raise
    return _next_assignment(user, campaign, now, rng, trust_hint=False)


def _next_assignment(
    user, campaign: Campaign | None, now: datetime, rng, trust_hint: bool
) -> Assignment | None:
    """One claim, in one transaction.

    With `trust_hint`, the first query's snapshot says whether the user holds work: when it
    says no, the own-lease query is skipped and every write that gives the user work checks
    it again (`unless_busy`), raising `_Conflict` if a concurrent tab got there first.
    Without it, the own lease is read after the lock, so nothing can conflict."""
    with transaction.atomic():
        # One claim at a time per user: concurrent tabs get the same task, not two.
        campaigns, busy = _lock_user_and_list_campaigns(user, campaign, now)
        unless_busy = None
        if trust_hint and busy is False:
            unless_busy = _live_of(user, campaign)
        else:
            own = _own_lease(user, campaign, now)
            if own is not None:
                return own
        for hints in campaigns:
            try:
                screening = _served(
                    quality.next_screening_item(user, hints.campaign), user, unless_busy
                )
            except quality.ScreeningFailed:
                if campaign is not None:
                    raise
                continue
            if screening is not None:
                return screening
            item = _regular(user, hints, now, rng, unless_busy)
            if item is not None:
                return item
    return None
