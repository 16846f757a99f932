"""The lead dashboard: progress, throughput, finish reasons, agreement and screening.

Staff only: anonymous visitors go to the login page, labelers get 403. The numbers come
from `annotate.dashboard` in a fixed number of queries; htmx polls refresh the stats fragment.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from annotate import dashboard
from annotate.arms import arm_rows, generation_arms
from annotate.models import Campaign


def staff_required(view: Callable) -> Callable:
    """Anonymous → login page; signed in but not staff → 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise PermissionDenied("The dashboard is for project leads.")
        return view(request, *args, **kwargs)

    return wrapper


@require_GET
@staff_required
def index(request: HttpRequest) -> HttpResponse:
    campaigns = list(dashboard.campaign_overview())
    return render(request, "dashboard/index.html", {"campaigns": campaigns})


@require_GET
@staff_required
def campaign(request: HttpRequest, slug: str) -> HttpResponse:
    chosen = get_object_or_404(Campaign, slug=slug)
    context = {"campaign": chosen, **dashboard.campaign_dashboard(chosen)}
    template = "dashboard/campaign.html"
    if request.htmx:
        template += "#stats"
    return render(request, template, context)


@require_GET
@staff_required
def arms(request: HttpRequest, slug: str) -> HttpResponse:
    """Active selection against the uniform control arm; the campaign page loads the panel."""
    chosen = get_object_or_404(Campaign, slug=slug)
    rows = arm_rows(chosen)
    context = {"campaign": chosen, "rows": rows, "generations": generation_arms(rows)}
    template = "dashboard/arms.html"
    if request.htmx:
        template += "#panel"
    return render(request, template, context)
