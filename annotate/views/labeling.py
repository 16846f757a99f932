"""The labeler-facing pages: home (a lead who labels nowhere gets their campaigns), the queue
(`/next/`), and the task page with its actions.

Each action is a POST that reads: parse the form, lock the requester's label
(`_get_locked_label_for_user`), call the rule on `Label` (`label.rate(...)`), render. htmx
requests get the task re-rendered from what was committed (so `aria-pressed` always reflects
what was stored), plain form posts a redirect back to the page. When the page says which saved
version it shows (`seen`, sent by label.js) and that is the version the action started from,
the answer is only the rows that changed plus the bar and notices, swapped out of band
(`HX-Reswap: none`); otherwise (no or old `seen`, an error, a finished task) it is the whole
`task` fragment.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, reswap

from annotate import dashboard, quality
from annotate.consensus import suggestions
from annotate.models import (
    Alternative,
    Assignment,
    Campaign,
    Label,
    ScreeningResult,
    SourceLabel,
)
from annotate.models.label_steps import ActionResult, LabelingError, LabelSnapshot
from annotate.queue import available_count, held_assignment, next_assignment

RATING_CHOICES = (
    (-1, "−1", "negative", "1 or −", "This step is wrong"),
    (0, "0", "neutral", "2 or 0", "Neither right nor wrong / unhelpful"),
    (1, "+1", "positive", "3 or +", "This step is correct and helpful"),
)


def labeler_required(view: Callable) -> Callable:
    """`login_required`, except that htmx requests are sent to the login page as a whole
    page (HX-Redirect) instead of having it swapped into the task fragment."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            if getattr(request, "htmx", False):
                here = request.htmx.current_url_abs_path or request.get_full_path()
                login = redirect_to_login(here)
                return HttpResponseClientRedirect(login.url)
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper


def _get_assignment_for_user(
    request: HttpRequest, assignment_id: int, *, allow_staff: bool = False
) -> Assignment:
    """The assignment if it is the requester's own (leads may read any): else 404."""
    assignment = get_object_or_404(
        Assignment.objects.select_related("sample__problem", "sample__campaign", "generation"),
        pk=assignment_id,
    )
    if assignment.labeler_id is not None and assignment.labeler_id == request.user.pk:
        return assignment
    if allow_staff and request.user.is_staff:
        return assignment
    raise Http404("No such task.")


def _agreement_display(scored: quality.Agreement) -> str:
    """QC agreement so far as a percentage, or an em dash before any QC item is scored."""
    return "—" if scored.score is None else f"{100 * scored.score:.0f}%"


def _agreement_detail(scored: quality.Agreement) -> str:
    """Give-ups apart from disagreements: "3 of 5 agreed, 1 disagreed, 1 given up"."""
    if not scored.items:
        return ""
    return (
        f"{scored.first_error_agree} of {scored.items} agreed, "
        f"{scored.disagreements} disagreed, {scored.abandoned} given up"
    )


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.is_staff and not Campaign.objects.filter(labelers=user).exists():
        # A lead who labels nowhere: their campaigns and where to go, not an empty queue.
        context = {"progress": dashboard.lead_overview()}
        return render(request, "labeling/lead_home.html", context)
    scored = quality.labeler_agreement(user)
    mine = Assignment.objects.for_labeler(user)
    recent = (
        Label.objects.for_labeler(user)
        .finished()
        .filter(assignment__isnull=False)
        .select_related("sample__problem", "assignment")
        .order_by("-finished_at", "-id")[:10]
    )
    context = {
        "done": mine.filter(state=Assignment.State.SUBMITTED).count(),
        "in_progress": mine.filter(state=Assignment.State.IN_PROGRESS).count(),
        "waiting": available_count(user),
        "agreement": _agreement_display(scored),
        "agreement_detail": _agreement_detail(scored),
        "campaigns": Campaign.objects.filter(labelers=user).order_by("slug"),
        "recent": recent,
    }
    return render(request, "labeling/home.html", context)


@require_GET
@login_required
def qc_feedback(request: HttpRequest) -> HttpResponse:
    """The labeler's own scored QC and screening items: their step labels beside gold."""
    scored = quality.labeler_agreement(request.user)
    context = {
        "items": quality.feedback_for(request.user),
        "agreement": _agreement_display(scored),
        "agreement_detail": _agreement_detail(scored),
    }
    return render(request, "labeling/qc_feedback.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def next_task(request: HttpRequest) -> HttpResponse:
    """POST claims the next task (or resumes the live one) and goes to it; GET only resumes
    the task the labeler holds, else shows the queue with a button that claims (a GET never
    claims: another site could make a labeler's browser send one)."""
    campaign = None
    slug = request.POST.get("campaign") or request.GET.get("campaign")
    if slug:
        campaign = get_object_or_404(Campaign, slug=slug, labelers=request.user)
    if request.method == "POST":
        try:
            assignment = next_assignment(request.user, campaign)
        except quality.ScreeningFailed:
            assignment = None
    else:
        assignment = held_assignment(request.user, campaign)
    if assignment is not None:
        return redirect("task", assignment_id=assignment.pk)
    failed = ScreeningResult.objects.filter(labeler=request.user).failed()
    context = {
        "failed_screening": [r.campaign for r in failed.select_related("campaign")],
        "member": Campaign.objects.filter(labelers=request.user).exists(),
        "waiting": 0 if request.method == "POST" else available_count(request.user, campaign),
        "campaign": campaign,
    }
    return render(request, "labeling/queue_empty.html", context)


#: How long after a found_error the page waits for alternatives before it stops asking.
ALTERNATIVES_PATIENCE = timedelta(minutes=10)


def _alternatives_context(label: Label, snap: LabelSnapshot) -> dict[str, Any]:
    """The alternatives to the erroneous step of the labeler's found_error label (PRM800K
    phase 2), and whether the page should keep asking for them (they arrive from a worker)."""
    alternatives = list(label.alternatives.filter(step=snap.error_step).order_by("index"))
    waiting = not alternatives and label.sample.campaign.alternatives_wanted > 0
    if waiting and label.finished_at and timezone.now() - label.finished_at > ALTERNATIVES_PATIENCE:
        waiting = False
    current = next((a for a in alternatives if a.rating is None), None)
    return {
        "alternatives": alternatives,
        "alternatives_waiting": waiting,
        "alternatives_shown": bool(alternatives) or waiting,
        "current_alternative": current.pk if current is not None else None,
    }


def _fragment_context(
    request: HttpRequest, assignment: Assignment, label: Label, snap: LabelSnapshot | None = None
) -> dict[str, Any]:
    """What the `task` fragment needs (not the problem: that is outside it)."""
    owner = assignment.labeler_id == request.user.pk
    snap = snap or label.snapshot(read_only=not owner)
    context = {
        "assignment": assignment,
        "label": label,
        "snap": snap,
        "owner": owner,
        "rating_choices": RATING_CHOICES,
        "expired": assignment.state == Assignment.State.EXPIRED,
    }
    if owner and label.pk is not None and snap.finish_reason == "found_error":
        context.update(_alternatives_context(label, snap))
    return context


def _task_context(
    request: HttpRequest, assignment: Assignment, label: Label, *, shown: bool | None = None
) -> dict:
    """`shown`: whether some source shows its suggestion on the sample, when already known
    (the page skips the query then: off by default)."""
    context = _fragment_context(request, assignment, label)
    context.update(
        sample=assignment.sample,
        problem=assignment.sample.problem,
        campaign=assignment.sample.campaign,
        suggestions=suggestions(assignment.sample_id) if shown is not False else [],
    )
    return context


@require_GET
@labeler_required
def task(request: HttpRequest, assignment_id: int) -> HttpResponse:
    # The labeler's own task with its label, in one query (the usual case).
    shown_sources = SourceLabel.objects.filter(
        sample_id=OuterRef("sample_id"), source__show_to_labelers=True
    )
    label = (
        Label.objects.select_related("assignment", "sample__problem", "sample__campaign")
        .annotate(suggested=Exists(shown_sources))
        .filter(assignment_id=assignment_id, assignment__labeler=request.user)
        .first()
    )
    shown = None
    if label is not None:
        assignment = label.assignment
        assignment.sample = label.sample
        shown = label.suggested
    else:
        assignment = _get_assignment_for_user(request, assignment_id, allow_staff=True)
        # A GET creates nothing: an unopened label is shown empty, and opened by its first
        # action (`_get_locked_label_for_user`).
        label = Label.objects.filter(assignment=assignment).first() or Label(
            assignment=assignment, sample=assignment.sample
        )
        label.assignment, label.sample = assignment, assignment.sample
    context = _task_context(request, assignment, label, shown=shown)
    return render(request, "labeling/task.html", context)


def _parse_int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _describe_cleared(result: ActionResult) -> str:
    """What the page says when a −1 cleared later ratings (the buttons do not show that)."""
    first, last = result.cleared[0] + 1, result.cleared[-1] + 1
    steps = f"step {first}" if first == last else f"steps {first}–{last}"
    return f"Step {result.step + 1} is now −1, so the later ratings ({steps}) were cleared."


def _get_locked_label_for_user(request: HttpRequest, assignment_id: int) -> Label:
    """The requester's label of the assignment, row-locked (call inside `transaction.atomic()`),
    opened on first use; 404 unless the assignment is theirs."""
    mine = Label.objects.locked().filter(assignment__labeler=request.user)
    try:
        return mine.get(assignment_id=assignment_id)
    except Label.DoesNotExist:
        # Not theirs (404 here), or no label yet: open it, then lock it.
        Label.open_for(_get_assignment_for_user(request, assignment_id))
        return get_object_or_404(mine, assignment_id=assignment_id)


def _changes(label: Label, result: ActionResult, after: LabelSnapshot) -> list | None:
    """The step rows the action changed, when the page needs only those: else None."""
    if result.finished or result.reopened or result.before is None:
        return None
    before = label.snapshot(state=result.before)
    if before.editable != after.editable:
        return None
    return [new for old, new in zip(before.steps, after.steps, strict=True) if old != new]


def _render_task(
    request: HttpRequest, label: Label, result: ActionResult | None = None, status: int = 200
) -> HttpResponse:
    """The saved state after an action: only what changed when the page's `seen` version is
    the one the action started from, else the whole `task` fragment."""
    assignment = label.assignment
    if not request.htmx:
        return redirect("task", assignment_id=assignment.pk)
    snap = label.snapshot(state=result.after if result is not None else None)
    context = _fragment_context(request, assignment, label, snap)
    seen = request.POST.get("seen")
    if result is not None and status == 200 and seen and seen == result.version_before:
        changed = _changes(label, result, snap)
        if changed is not None:
            context["changed"] = changed
            return reswap(render(request, "labeling/task.html#changes", context), "none")
    return render(request, "labeling/task.html#task", context, status=status)


def _render_refusal(
    request: HttpRequest, assignment_id: int, error: LabelingError, elapsed: str | None
) -> HttpResponse:
    """The whole task with the rule's message, after keeping the active time the client
    reported with the refused (rolled back) action."""
    with transaction.atomic():
        label = _get_locked_label_for_user(request, assignment_id)
        label.heartbeat(elapsed)
    messages.error(request, error.message)
    return _render_task(request, label, status=409)


@require_POST
@labeler_required
def rate(request: HttpRequest, assignment_id: int) -> HttpResponse:
    step = _parse_int(request.POST.get("step"))
    rating = _parse_int(request.POST.get("rating"))
    elapsed = request.POST.get("elapsed_ms")
    try:
        with transaction.atomic():
            label = _get_locked_label_for_user(request, assignment_id)
            result = label.rate(step, rating, elapsed_ms=elapsed)
    except LabelingError as error:
        return _render_refusal(request, assignment_id, error, elapsed)
    if result.cleared:
        messages.info(request, _describe_cleared(result))
    return _render_task(request, label, result)


@require_POST
@labeler_required
def flag(request: HttpRequest, assignment_id: int) -> HttpResponse:
    step = _parse_int(request.POST.get("step"))
    elapsed = request.POST.get("elapsed_ms")
    try:
        with transaction.atomic():
            label = _get_locked_label_for_user(request, assignment_id)
            result = label.flag(step, elapsed_ms=elapsed)
    except LabelingError as error:
        return _render_refusal(request, assignment_id, error, elapsed)
    return _render_task(request, label, result)


@require_POST
@labeler_required
def undo(request: HttpRequest, assignment_id: int) -> HttpResponse:
    elapsed = request.POST.get("elapsed_ms")
    try:
        with transaction.atomic():
            label = _get_locked_label_for_user(request, assignment_id)
            result = label.undo_last(elapsed_ms=elapsed)
    except LabelingError as error:
        return _render_refusal(request, assignment_id, error, elapsed)
    return _render_task(request, label, result)


@require_POST
@labeler_required
def finish(request: HttpRequest, assignment_id: int) -> HttpResponse:
    reason = request.POST.get("reason", "")
    elapsed = request.POST.get("elapsed_ms")
    try:
        with transaction.atomic():
            label = _get_locked_label_for_user(request, assignment_id)
            result = label.finish(reason, elapsed_ms=elapsed)
    except LabelingError as error:
        return _render_refusal(request, assignment_id, error, elapsed)
    return _render_task(request, label, result)


@require_POST
@labeler_required
def heartbeat(request: HttpRequest, assignment_id: int) -> HttpResponse:
    """Active time while reading, and a lease renewal; sent by label.js, also as a beacon."""
    elapsed = request.POST.get("elapsed_ms")
    with transaction.atomic():
        label = _get_locked_label_for_user(request, assignment_id)
        label.heartbeat(elapsed)
    return HttpResponse(status=204)


# --- alternatives at the first error (PRM800K phase 2) ---------------------------------------


def _render_alternatives(request: HttpRequest, label: Label, status: int = 200) -> HttpResponse:
    assignment = label.assignment
    if not request.htmx:
        return redirect("task", assignment_id=assignment.pk)
    context = _fragment_context(request, assignment, label)
    context["alone"] = True  # the messages are shown in it (not in the task's notices)
    return render(request, "labeling/task.html#alternatives", context, status=status)


@require_GET
@labeler_required
def alternatives(request: HttpRequest, assignment_id: int) -> HttpResponse:
    """The alternatives block, read only: the page polls it until the worker's proposals are
    stored (the answer without the poll stops it)."""
    label = get_object_or_404(
        Label.objects.select_related("assignment", "sample__campaign"),
        assignment_id=assignment_id,
        assignment__labeler=request.user,
    )
    context = _fragment_context(request, label.assignment, label)
    context["alone"] = True
    return render(request, "labeling/task.html#alternatives", context)


@require_POST
@labeler_required
def rate_alternative(request: HttpRequest, assignment_id: int, alternative_id: int) -> HttpResponse:
    rating = _parse_int(request.POST.get("rating"))
    if rating not in (-1, 0, 1):
        return HttpResponse("Rate an alternative −1, 0 or +1.", status=400)
    with transaction.atomic():
        label = _get_locked_label_for_user(request, assignment_id)
        alternative = get_object_or_404(Alternative, pk=alternative_id, label=label)
        written = alternative.rate(rating)
    if not written:
        messages.error(
            request, "Not saved: this task no longer ends with a −1 at that step (re-opened?)."
        )
        return _render_alternatives(request, label, status=409)
    return _render_alternatives(request, label)
