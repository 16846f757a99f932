"""The labeler-facing pages: home, the queue (`/next/`), and the task page with its actions.

Every action is a POST that saves before it answers: htmx requests get the `task` fragment
re-rendered from the database (so `aria-pressed` always reflects what was stored), plain form
posts get a redirect back to the page. Rules live in `Label` (see `label_rules`); these views
only check who is asking, parse input and render.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from annotate import quality
from annotate.models import Assignment, Campaign, Label, ScreeningResult
from annotate.models.label_rules import ActionResult, LabelingError
from annotate.queue import available_count, next_assignment

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


def _agreement_display(user) -> str:
    """QC agreement so far as a percentage, or an em dash before any QC item is scored."""
    measure = getattr(quality, "labeler_agreement", None)
    if measure is None:
        return "—"
    value = measure(user)
    score = getattr(value, "score", value)
    if not isinstance(score, int | float):
        return "—"
    return f"{100 * score:.0f}%"


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    mine = Assignment.objects.for_labeler(user)
    recent = (
        Label.objects.filter(labeler=user, finish_reason__isnull=False, assignment__isnull=False)
        .select_related("sample__problem", "assignment")
        .order_by("-finished_at", "-id")[:10]
    )
    context = {
        "done": mine.filter(state=Assignment.State.SUBMITTED).count(),
        "in_progress": mine.filter(state=Assignment.State.IN_PROGRESS).count(),
        "waiting": available_count(user),
        "agreement": _agreement_display(user),
        "campaigns": Campaign.objects.filter(labelers=user).order_by("slug"),
        "recent": recent,
    }
    return render(request, "labeling/home.html", context)


@require_GET
@login_required
def next_task(request: HttpRequest) -> HttpResponse:
    """Claim the next task (or resume the live one) and go to it; else the empty queue."""
    campaign = None
    slug = request.GET.get("campaign")
    if slug:
        campaign = get_object_or_404(Campaign, slug=slug, labelers=request.user)
    try:
        assignment = next_assignment(request.user, campaign)
    except quality.ScreeningFailed:
        assignment = None
    if assignment is not None:
        return redirect("task", assignment_id=assignment.pk)
    failed = ScreeningResult.objects.filter(labeler=request.user).failed()
    context = {
        "failed_screening": [r.campaign for r in failed.select_related("campaign")],
        "member": Campaign.objects.filter(labelers=request.user).exists(),
    }
    return render(request, "labeling/queue_empty.html", context)


def _task_context(request: HttpRequest, assignment: Assignment, label: Label) -> dict:
    owner = assignment.labeler_id == request.user.pk
    snap = label.snapshot(read_only=not owner)
    return {
        "assignment": assignment,
        "label": label,
        "snap": snap,
        "owner": owner,
        "sample": assignment.sample,
        "problem": assignment.sample.problem,
        "campaign": assignment.sample.campaign,
        "rating_choices": RATING_CHOICES,
        "expired": assignment.state == Assignment.State.EXPIRED,
    }


@require_GET
@labeler_required
def task(request: HttpRequest, assignment_id: int) -> HttpResponse:
    assignment = _get_assignment_for_user(request, assignment_id, allow_staff=True)
    if assignment.labeler_id == request.user.pk:
        label = Label.for_assignment(assignment)
    else:
        # A lead reading someone else's task: show what exists, create nothing.
        label = Label.objects.filter(assignment=assignment).first() or Label(
            assignment=assignment, sample=assignment.sample
        )
    return render(request, "labeling/task.html", _task_context(request, assignment, label))


def _parse_int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _describe(result: ActionResult) -> str | None:
    """What the page says after an action beyond what the buttons and banner show."""
    if not result.cleared:
        return None
    first, last = result.cleared[0] + 1, result.cleared[-1] + 1
    steps = f"step {first}" if first == last else f"steps {first}–{last}"
    return f"Step {result.step + 1} is now −1, so the later ratings ({steps}) were cleared."


def _act(
    request: HttpRequest, assignment_id: int, action: Callable[[Label, int | None], ActionResult]
) -> HttpResponse:
    """Run one labeling action for the assignment's owner, then answer with the saved state."""
    assignment = _get_assignment_for_user(request, assignment_id)
    label = Label.for_assignment(assignment)
    elapsed = request.POST.get("elapsed_ms")
    status = 200
    try:
        result = action(label, elapsed)
    except LabelingError as error:
        # The action rolled back; keep the active time the client reported with it.
        label.heartbeat(elapsed)
        messages.error(request, error.message)
        status = 409
    else:
        note = _describe(result)
        if note:
            messages.info(request, note)
    assignment.refresh_from_db()
    label.refresh_from_db()
    if request.htmx:
        context = _task_context(request, assignment, label)
        return render(request, "labeling/task.html#task", context, status=status)
    return redirect("task", assignment_id=assignment.pk)


@require_POST
@labeler_required
def rate(request: HttpRequest, assignment_id: int) -> HttpResponse:
    step = _parse_int(request.POST.get("step"))
    rating = _parse_int(request.POST.get("rating"))

    def action(label: Label, elapsed) -> ActionResult:
        return label.rate(step, rating, elapsed_ms=elapsed)

    return _act(request, assignment_id, action)


@require_POST
@labeler_required
def flag(request: HttpRequest, assignment_id: int) -> HttpResponse:
    step = _parse_int(request.POST.get("step"))

    def action(label: Label, elapsed) -> ActionResult:
        return label.flag(step, elapsed_ms=elapsed)

    return _act(request, assignment_id, action)


@require_POST
@labeler_required
def undo(request: HttpRequest, assignment_id: int) -> HttpResponse:
    def action(label: Label, elapsed) -> ActionResult:
        return label.undo_last(elapsed_ms=elapsed)

    return _act(request, assignment_id, action)


@require_POST
@labeler_required
def finish(request: HttpRequest, assignment_id: int) -> HttpResponse:
    reason = request.POST.get("reason", "")

    def action(label: Label, elapsed) -> ActionResult:
        return label.finish(reason, elapsed_ms=elapsed)

    return _act(request, assignment_id, action)


@require_POST
@labeler_required
def heartbeat(request: HttpRequest, assignment_id: int) -> HttpResponse:
    """Active time while reading, and a lease renewal; sent by label.js, also as a beacon."""
    assignment = _get_assignment_for_user(request, assignment_id)
    Label.for_assignment(assignment).heartbeat(request.POST.get("elapsed_ms"))
    return HttpResponse(status=204)
