"""Admin for quality control: marking gold, screening verdicts.

Imported at the bottom of `annotate/admin.py`. It extends the sample, label and gold admins
registered there (subclassing whatever is registered) instead of editing them:

- samples: actions "Mark as gold (QC)" / "Mark as gold (screening)" open a form with one
  rating select per step;
- labels: actions "Use as gold (QC)" / "Use as gold (screening)" copy a finished label;
- screening results: a lead can let a failed labeler pass after review;
- label quality: a campaign's quality settings (review rate, consensus-only training), its
  automatic label sources (whether labelers see them, whether training uses them), their
  imported labels and the reviews (read-only: decided on the review page).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import urlencode

from annotate import quality
from annotate.models import (
    GoldStandard,
    Label,
    LabelSource,
    QualitySettings,
    Review,
    Sample,
    ScreeningResult,
    SourceLabel,
)
from annotate.models.label import FinishReason

RATING_CHOICES = [("", "—"), ("1", "+1"), ("0", "0"), ("-1", "−1")]
PURPOSES = dict(GoldStandard.Purpose.choices)


def _extend(model, mixin: type) -> None:
    """Re-register `model` with `mixin` on top of the admin class registered for it."""
    site = admin.site
    base = type(site.get_model_admin(model)) if site.is_registered(model) else admin.ModelAdmin
    if site.is_registered(model):
        site.unregister(model)
    attrs = {"actions": [*(base.actions or []), *mixin.extra_actions]}
    site.register(model, type(f"Quality{base.__name__}", (mixin, base), attrs))


class GoldForm(forms.Form):
    """Gold ratings for one sample: a select per step, a purpose and a finish reason."""

    purpose = forms.ChoiceField(choices=GoldStandard.Purpose.choices)
    finish_reason = forms.ChoiceField(choices=FinishReason.choices)

    def __init__(self, *args, sample: Sample, **kwargs):
        super().__init__(*args, **kwargs)
        self.sample = sample
        for index, _ in enumerate(sample.steps):
            self.fields[f"step_{index}"] = forms.ChoiceField(
                choices=RATING_CHOICES, required=False, label=f"Step {index + 1}"
            )

    def step_rows(self) -> list[tuple[int, str, forms.BoundField]]:
        return [(i, text, self[f"step_{i}"]) for i, text in enumerate(self.sample.steps)]

    def ratings(self) -> list[int | None]:
        values = [self.cleaned_data.get(f"step_{i}") for i in range(len(self.sample.steps))]
        return [None if v in (None, "") else int(v) for v in values]

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            try:
                quality.validate_gold(
                    self.ratings(), cleaned["finish_reason"], len(self.sample.steps)
                )
            except ValidationError as error:
                raise forms.ValidationError(error.messages) from error
        return cleaned


def _initial(sample: Sample, purpose: str) -> dict:
    gold = GoldStandard.objects.filter(sample=sample).first()
    if gold is None:
        return {"purpose": purpose, "finish_reason": FinishReason.FOUND_ERROR}
    initial = {"purpose": purpose, "finish_reason": gold.finish_reason}
    initial.update({f"step_{i}": str(r) for i, r in enumerate(gold.ratings) if r is not None})
    return initial


class GoldAdminMixin:
    extra_actions: list = []

    def get_urls(self):
        urls = super().get_urls()
        view = self.admin_site.admin_view(self.mark_gold_view)
        return [
            path("mark/<int:sample_id>/", view, name="annotate_goldstandard_mark"),
            *urls,
        ]

    def mark_gold_view(self, request: HttpRequest, sample_id: int) -> HttpResponse:
        if not (self.has_add_permission(request) and self.has_change_permission(request)):
            raise PermissionDenied
        sample = get_object_or_404(Sample.objects.select_related("problem"), pk=sample_id)
        purpose = request.GET.get("purpose", GoldStandard.Purpose.QUALITY_CONTROL)
        if purpose not in PURPOSES:
            purpose = GoldStandard.Purpose.QUALITY_CONTROL
        rest = [int(i) for i in request.GET.get("rest", "").split(",") if i.isdigit()]
        if request.method == "POST":
            form = GoldForm(request.POST, sample=sample)
            if form.is_valid():
                quality.mark_gold(
                    sample,
                    form.cleaned_data["purpose"],
                    form.ratings(),
                    form.cleaned_data["finish_reason"],
                    by=request.user,
                )
                self.message_user(request, f"Sample {sample} is now gold.", messages.SUCCESS)
                if rest:
                    return HttpResponseRedirect(_mark_url(rest, purpose))
                return HttpResponseRedirect(reverse("admin:annotate_goldstandard_changelist"))
        else:
            form = GoldForm(initial=_initial(sample, purpose), sample=sample)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Gold for sample {sample}",
            "sample": sample,
            "form": form,
            "remaining": len(rest),
        }
        return TemplateResponse(request, "admin/quality/mark_gold.html", context)


def _mark_url(sample_ids: list[int], purpose: str) -> str:
    first, rest = sample_ids[0], sample_ids[1:]
    query = {"purpose": purpose}
    if rest:
        query["rest"] = ",".join(map(str, rest))
    url = reverse("admin:annotate_goldstandard_mark", args=[first])
    return f"{url}?{urlencode(query)}"


def _mark_action(purpose: str):
    def action(modeladmin, request, queryset):
        ids = list(queryset.order_by("id").values_list("id", flat=True))
        return HttpResponseRedirect(_mark_url(ids, purpose))

    action.__name__ = f"mark_gold_{purpose}"
    return admin.action(description=f"Mark as gold ({PURPOSES[purpose]})")(action)


def _use_label_action(purpose: str):
    def action(modeladmin, request, queryset):
        made = 0
        for label in queryset.select_related("sample"):
            try:
                quality.gold_from_label(label, purpose, by=request.user)
            except ValidationError as error:
                modeladmin.message_user(request, " ".join(error.messages), messages.WARNING)
            else:
                made += 1
        modeladmin.message_user(request, f"{made} sample(s) now gold.", messages.SUCCESS)

    action.__name__ = f"use_as_gold_{purpose}"
    return admin.action(description=f"Use as gold ({PURPOSES[purpose]})")(action)


class SampleGoldMixin:
    extra_actions = [
        _mark_action(GoldStandard.Purpose.QUALITY_CONTROL),
        _mark_action(GoldStandard.Purpose.SCREENING),
    ]


class LabelGoldMixin:
    extra_actions = [
        _use_label_action(GoldStandard.Purpose.QUALITY_CONTROL),
        _use_label_action(GoldStandard.Purpose.SCREENING),
    ]


class ScreeningResultAdmin(admin.ModelAdmin):
    list_display = [
        "labeler",
        "campaign",
        "status",
        "agreement",
        "step_agreement",
        "items",
        "decided_at",
        "overridden_by",
    ]
    list_filter = ["status", "campaign"]
    search_fields = ["labeler__username"]
    list_select_related = ["labeler", "campaign", "overridden_by"]
    readonly_fields = ["agreement", "step_agreement", "items", "decided_at", "overridden_by"]
    actions = ["let_pass"]

    @admin.action(description="Let pass (override after review)")
    def let_pass(self, request, queryset):
        for result in queryset.failed():
            result.override_pass(request.user)
        self.message_user(request, "Overridden.", messages.SUCCESS)


_extend(GoldStandard, GoldAdminMixin)
_extend(Sample, SampleGoldMixin)
_extend(Label, LabelGoldMixin)
if not admin.site.is_registered(ScreeningResult):
    admin.site.register(ScreeningResult, ScreeningResultAdmin)


class QualitySettingsAdmin(admin.ModelAdmin):
    list_display = ["campaign", "review_rate", "train_on_consensus_only"]
    list_select_related = ["campaign"]


class LabelSourceAdmin(admin.ModelAdmin):
    list_display = ["name", "campaign", "kind", "show_to_labelers", "use_for_training"]
    list_editable = ["show_to_labelers", "use_for_training"]
    list_filter = ["campaign", "kind"]
    readonly_fields = ["kind", "created_at"]


class SourceLabelAdmin(admin.ModelAdmin):
    list_display = ["id", "source", "sample", "created_at"]
    list_filter = ["source"]
    list_select_related = ["source__campaign", "sample"]
    raw_id_fields = ["sample"]
    readonly_fields = ["source", "sample", "ratings", "scores", "provenance", "created_at"]


class ReviewAdmin(admin.ModelAdmin):
    list_display = ["id", "sample", "reason", "state", "reviewer", "decided_at"]
    list_filter = ["state", "reason", "sample__campaign"]
    list_select_related = ["sample", "reviewer"]
    readonly_fields = [
        "sample",
        "labels",
        "reason",
        "state",
        "chosen",
        "reviewer",
        "created_at",
        "decided_at",
    ]


for model, model_admin in [
    (QualitySettings, QualitySettingsAdmin),
    (LabelSource, LabelSourceAdmin),
    (SourceLabel, SourceLabelAdmin),
    (Review, ReviewAdmin),
]:
    if not admin.site.is_registered(model):
        admin.site.register(model, model_admin)
