"""Model quality pages of the lead dashboard: a campaign's checkpoints across generations,
and one checkpoint's metrics with its best-of-N curve (inline SVG, no external assets).

Staff only (the dashboard's `staff_required`: anonymous → login, labelers → 403).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from annotate import model_dashboard
from annotate.models import Campaign, Checkpoint
from annotate.views.dashboard import staff_required


@require_GET
@staff_required
def campaign_models(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = get_object_or_404(Campaign, slug=slug)
    return render(request, "dashboard/checkpoints.html", model_dashboard.campaign_context(campaign))


@require_GET
@staff_required
def checkpoint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    checkpoint = get_object_or_404(Checkpoint.objects.select_related("campaign"), pk=pk)
    return render(
        request, "dashboard/checkpoint.html", model_dashboard.checkpoint_context(checkpoint)
    )
