"""The review queue for leads: a campaign's open reviews, and one review's labels side by
side with accept / correct / reject (`annotate.review`).

Staff only (labelers get 403). Decisions are POSTs; htmx requests are answered with a
client redirect to the next open review, plain posts with a redirect. A correction that
breaks the labeling rules re-renders the review fragment with the reason.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from annotate import dashboard
from annotate import review as reviews
from annotate.agreement import label_views, sample_agreement
from annotate.consensus import source_first_error
from annotate.models import Campaign, Label, Review, SourceLabel
from annotate.models.label import FinishReason
from annotate.views.dashboard import staff_required

RATING_NAMES = {1: "+1", 0: "0", -1: "−1", None: "·"}


@require_GET
@staff_required
def queue(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = get_object_or_404(Campaign, slug=slug)
    reviews.refresh_reviews(campaign)
    pending = reviews.review_queue(campaign).select_related("sample__problem")
    return render(request, "review/queue.html", {"campaign": campaign, "reviews": pending})


@require_GET
@staff_required
def agreement(request: HttpRequest, slug: str) -> HttpResponse:
    """The dashboard's overlap-agreement panel, loaded by the campaign page."""
    campaign = get_object_or_404(Campaign, slug=slug)
    context = {"campaign": campaign, "overlap": dashboard.overlap_panel(campaign)}
    return render(request, "review/_overlap_panel.html", context)


def _columns(review: Review) -> list[dict]:
    """The review's labels as columns: who, outcome, a rating per step."""
    labels = review.labels.select_related("labeler").order_by("id")
    names = {label.pk: label.labeler or label.labeler_uuid or "imported" for label in labels}
    views = label_views(labels)
    n_steps = len(review.sample.steps or [])
    return [
        {
            "number": number,
            "id": view.id,
            "who": names[view.id],
            "finish_reason": view.finish_reason,
            "cells": [
                RATING_NAMES[view.ratings[i] if i < len(view.ratings) else None]
                for i in range(n_steps)
            ],
            "flagged": view.flagged,
        }
        for number, view in enumerate(views, 1)
    ]


def _context(review: Review, error: str = "") -> dict:
    sample = review.sample
    columns = _columns(review)
    sources = [
        {"name": label.source.name, "first_error": source_first_error(label)}
        for label in SourceLabel.objects.filter(sample=sample).select_related("source")
    ]
    steps = [
        {"index": i, "number": i + 1, "text": text, "cells": [c["cells"][i] for c in columns]}
        for i, text in enumerate(sample.steps or [])
    ]
    return {
        "review": review,
        "sample": sample,
        "campaign": sample.campaign,
        "columns": columns,
        "steps": steps,
        "sources": sources,
        "agreement": sample_agreement(label_views(review.labels.all())),
        "finish_reasons": [FinishReason.FOUND_ERROR, FinishReason.SOLUTION],
        "error": error,
    }


def _review(pk: int) -> Review:
    return get_object_or_404(
        Review.objects.select_related("sample__problem", "sample__campaign"), pk=pk
    )


@require_GET
@staff_required
def item(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "review/item.html", _context(_review(pk)))


def _next(request: HttpRequest, review: Review) -> HttpResponse:
    """On to the campaign's next open review, or back to its queue page when none is left."""
    following = reviews.review_queue(review.sample.campaign).exclude(pk=review.pk).first()
    if following is not None:
        url = reverse("review-item", args=[following.pk])
    else:
        url = reverse("review-queue", args=[review.sample.campaign.slug])
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


def _decided(request: HttpRequest, review: Review, action) -> HttpResponse:
    try:
        action()
    except reviews.ReviewClosed:
        messages.warning(request, f"Review {review.pk} was already decided.")
    except ValidationError as error:
        context = _context(review, error="; ".join(error.messages))
        return render(request, "review/item.html#review", context)
    return _next(request, review)


@require_POST
@staff_required
def accept(request: HttpRequest, pk: int) -> HttpResponse:
    review = _review(pk)
    label_id = request.POST.get("label", "")
    label = get_object_or_404(Label, pk=int(label_id) if label_id.isdigit() else 0)
    return _decided(request, review, lambda: reviews.accept(review, label, request.user))


@require_POST
@staff_required
def correct(request: HttpRequest, pk: int) -> HttpResponse:
    review = _review(pk)
    ratings = []
    for i in range(len(review.sample.steps or [])):
        value = request.POST.get(f"step_{i}", "")
        ratings.append(int(value) if value in ("-1", "0", "1") else None)
    reason = request.POST.get("finish_reason", "")
    return _decided(request, review, lambda: reviews.correct(review, ratings, reason, request.user))


@require_POST
@staff_required
def reject(request: HttpRequest, pk: int) -> HttpResponse:
    review = _review(pk)
    return _decided(request, review, lambda: reviews.reject(review, request.user))
