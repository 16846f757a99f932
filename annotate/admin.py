"""Admin for project leads: campaigns are configured here; everything else is browsable."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from annotate import ground_truth
from annotate.admin_pagination import EstimatedCountPaginator
from annotate.checkpoints import validate_checkpoint_dir
from annotate.generations import (
    PipelineError,
    SelectionError,
    has_open_work,
    plan_next_generation,
    resume_generation,
    start_next_generation,
)
from annotate.models import (
    Alternative,
    Assignment,
    AuditEvent,
    Campaign,
    Checkpoint,
    Generation,
    GoldStandard,
    Label,
    Problem,
    QueuedTask,
    Sample,
    Score,
    Selection,
    StepRating,
)
from annotate.models.audit import SELECTION_FIELDS
from annotate.models.campaign import DEFAULT_UNIFORM_FRACTION
from annotate.retraining import start_retraining
from annotate.schedules import ensure_campaign_schedule
from annotate.templatetags.stepwise_markdown import render_markdown


class CampaignForm(forms.ModelForm):
    def clean_active_checkpoint(self) -> Checkpoint | None:
        checkpoint = self.cleaned_data.get("active_checkpoint")
        if checkpoint is None or checkpoint.pk == self.initial.get("active_checkpoint"):
            return checkpoint
        if self.instance.pk is None or checkpoint.campaign_id != self.instance.pk:
            raise forms.ValidationError("Choose a checkpoint of this campaign.")
        if checkpoint.status not in Checkpoint.ACTIVATABLE:
            raise forms.ValidationError(
                f"This checkpoint is {checkpoint.get_status_display().lower()}: only a ready "
                "(or rejected) checkpoint can become the active one."
            )
        return checkpoint


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    list_display = [
        "slug",
        "name",
        "strategy",
        "k",
        "wrong_fraction",
        "max_per_problem",
        "qc_rate",
        "overlap",
        "active_checkpoint",
        "problem_count",
        "latest_generation",
    ]
    list_filter = ["strategy"]
    search_fields = ["slug", "name"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["labelers"]
    autocomplete_fields = ["active_checkpoint"]
    fieldsets = [
        (None, {"fields": ["slug", "name", "guidelines"]}),
        ("Selection", {"fields": list(SELECTION_FIELDS)}),
        (
            "Labeling",
            {
                "fields": [
                    "overlap",
                    "lease_minutes",
                    "qc_rate",
                    "screening_required",
                    "screening_pass_mark",
                    "labelers",
                ]
            },
        ),
        (
            "Generator",
            {
                "fields": [
                    "generator_n",
                    "generator_backend",
                    "generator_base_url",
                    "generator_model",
                    "generator_api_key_env",
                    "generator_temperature",
                    "generator_top_p",
                    "generator_max_tokens",
                    "generator_stop",
                    "generator_split_rule",
                    "generator_concurrency",
                    "generator_prompt",
                    "alternatives",
                ],
                "description": "With N > 0 each generation starts by generating N solutions "
                "per train problem (then grade → score → select → assign). The API key is "
                "read from the named environment variable on the workers, never stored.",
            },
        ),
        (
            "Retraining",
            {
                "fields": [
                    "auto_retrain",
                    "retrain_label_target",
                    "retrain_schedule",
                    "retrain_epochs",
                    "retrain_base",
                    "promotion_metric",
                    "promotion_min_delta",
                ],
                "description": "Train → evaluate → promote only if better than the active "
                "checkpoint → rescore → next generation. The label-target check runs on the "
                "“stepwise: check retraining” periodic task.",
            },
        ),
    ]

    actions = ["start_next_generation", "retrain_now", "add_retraining_schedule"]

    def save_model(self, request, obj: Campaign, form, change: bool) -> None:
        # The checkpoint lifecycle has one owner: a new active checkpoint goes through
        # Campaign.activate (old one back to ready), never a bare save of the link.
        chosen = obj.active_checkpoint
        if change and "active_checkpoint" in form.changed_data:
            obj.active_checkpoint_id = form.initial.get("active_checkpoint")
        super().save_model(request, obj, form, change)
        if change and "active_checkpoint" in form.changed_data:
            if chosen is not None:
                obj.activate(chosen)
            else:
                obj.deactivate_checkpoint()
        changed = [name for name in SELECTION_FIELDS if name in form.changed_data]
        if changed:  # the trail keeps old → new of each selection field the lead changed
            new = {name: form.cleaned_data.get(name) for name in changed}
            values = {
                name: [str(form.initial.get(name)), str(getattr(value, "pk", value))]
                for name, value in new.items()
            }
            AuditEvent.record(
                request.user,
                "admin",
                AuditEvent.Action.CAMPAIGN_SETTINGS,
                f"campaign {obj.slug}",
                campaign=obj,
                changed=values,
                created=not change,
            )
        if "active_checkpoint" in changed and obj.active_checkpoint_id is not None:
            AuditEvent.record(
                request.user,
                "admin",
                AuditEvent.Action.CHECKPOINT_ACTIVATED,
                f"checkpoint {obj.active_checkpoint_id}",
                campaign=obj,
            )

    @admin.action(
        description="Retrain now (train, evaluate, promote if better, next generation)",
        permissions=["change"],
    )
    def retrain_now(self, request, queryset) -> None:
        for campaign in queryset:
            checkpoint = start_retraining(campaign, reason=Checkpoint.Trigger.MANUAL)
            if checkpoint is None:
                message = f"{campaign.slug}: a training or a generation is running."
                self.message_user(request, message, messages.WARNING)
            else:
                message = f"{campaign.slug}: training checkpoint {checkpoint.pk} queued."
                self.message_user(request, message, messages.SUCCESS)

    @admin.action(
        description="Add a nightly retraining schedule (edit it under Periodic tasks)",
        permissions=["change"],
    )
    def add_retraining_schedule(self, request, queryset) -> None:
        for campaign in queryset:
            task = ensure_campaign_schedule(campaign)
            message = f"{campaign.slug}: retraining schedule “{task.name}”."
            self.message_user(request, message, messages.SUCCESS)

    def get_changeform_initial_data(self, request):
        return {
            "uniform_fraction": DEFAULT_UNIFORM_FRACTION,
            **super().get_changeform_initial_data(request),
        }

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_problems=Count("problems"))

    @admin.action(
        description="Start next generation (generate if N > 0, score with the active PRM, "
        "select, assign)",
        permissions=["change"],
    )
    def start_next_generation(self, request, queryset) -> HttpResponse | None:
        """Campaigns with open work go to the confirmation page first; the others start."""
        waiting = []
        for campaign in queryset:
            if has_open_work(campaign):
                waiting.append(campaign)
                continue
            self._start(request, campaign, close_open=False)
        if len(waiting) == 1 and len(queryset) == 1:
            return redirect(_start_url(waiting[0]))
        for campaign in waiting:
            message = format_html(
                '{}: its open generation still has work. <a href="{}">Review and confirm</a>.',
                campaign.slug,
                _start_url(campaign),
            )
            self.message_user(request, message, messages.WARNING)
        return None

    def _start(self, request: HttpRequest, campaign: Campaign, *, close_open: bool) -> bool:
        try:
            generation = start_next_generation(campaign, close_open=close_open)
        except (PipelineError, SelectionError) as exc:
            self.message_user(request, f"{campaign.slug}: {exc}", messages.WARNING)
            return False
        AuditEvent.record(
            request.user,
            "admin",
            AuditEvent.Action.GENERATION_STARTED,
            f"generation {generation.number}" + (", open ones closed" if close_open else ""),
            campaign=campaign,
        )
        self.message_user(
            request,
            f"{campaign.slug}: generation {generation.number} queued; "
            "its progress shows under Generations.",
            messages.SUCCESS,
        )
        return True

    def get_urls(self):
        view = self.admin_site.admin_view(self.start_generation_view)
        view.model_admin = self  # as the admin's own views: the URL names a row of this model
        start = path(
            "<path:object_id>/start-generation/", view, name="annotate_campaign_start_generation"
        )
        return [start, *super().get_urls()]

    def start_generation_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: what starting now would do, written nowhere; POST: start, closing the open
        generations or keeping them, as the lead chose."""
        campaign = self.get_object(request, object_id)
        if campaign is None:
            raise Http404("No such campaign.")
        if not self.has_change_permission(request, campaign):
            raise PermissionDenied
        if request.method == "POST":
            close = request.POST.get("open_generations") == "close"
            if self._start(request, campaign, close_open=close):
                changelist = reverse("admin:annotate_generation_changelist")
                return redirect(f"{changelist}?campaign__id__exact={campaign.pk}")
            return redirect(_start_url(campaign))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": campaign,
            "title": f"Start the next generation of {campaign.slug}?",
            "plan": plan_next_generation(campaign),
        }
        return TemplateResponse(request, "admin/annotate/campaign/start_generation.html", context)

    @admin.display(description="Problems", ordering="_problems")
    def problem_count(self, obj: Campaign) -> int:
        return obj._problems

    @admin.display(description="Latest generation")
    def latest_generation(self, obj: Campaign) -> str:
        generation = obj.generations.newest()
        if generation is None:
            return "—"
        progress = ""
        if generation.status == Generation.Status.GENERATING and generation.samples_wanted:
            progress = f" {generation.samples_generated}/{generation.samples_wanted}"
        if generation.status == Generation.Status.SCORING and generation.progress_total:
            progress = f" {generation.progress_done}/{generation.progress_total}"
        return f"{generation.number}: {generation.get_status_display()}{progress}"


def _start_url(campaign: Campaign) -> str:
    return reverse("admin:annotate_campaign_start_generation", args=[campaign.pk])


@admin.register(Problem)
class ProblemAdmin(admin.ModelAdmin):
    list_display = [
        "unique_id",
        "campaign",
        "subject",
        "level",
        "split",
        "ground_truth_answer",
        "ground_truth_status",
        "ground_truth_note",
    ]
    list_filter = ["ground_truth_status", "campaign", "split", "subject", "level"]
    search_fields = ["unique_id", "problem", "ground_truth_answer"]
    list_select_related = ["campaign"]
    show_full_result_count = False
    readonly_fields = ["ground_truth_status", "ground_truth_note"]
    actions = ["confirm_ground_truth"]

    @admin.action(description="Confirm the ground truth (its samples count as wrong again)")
    def confirm_ground_truth(self, request, queryset) -> None:
        done = ground_truth.confirm(queryset, request.user.get_username())
        self.message_user(request, f"Confirmed {done} ground truth(s).", messages.SUCCESS)

    def save_model(self, request, obj, form, change) -> None:
        """Editing the answer fixes the ground truth: its samples are regraded, and it is
        confirmed."""
        if not change or "ground_truth_answer" not in form.changed_data:
            return super().save_model(request, obj, form, change)
        answer = obj.ground_truth_answer
        obj.ground_truth_answer = form.initial["ground_truth_answer"]
        super().save_model(request, obj, form, change)
        changed = ground_truth.fix_ground_truth(obj, answer, request.user.get_username())
        self.message_user(
            request, f"Ground truth fixed and confirmed; {changed} verdict(s) changed."
        )


class ScoreInline(admin.TabularInline):
    model = Score
    extra = 0
    fields = ["checkpoint", "score", "truncated", "step_scores"]
    readonly_fields = fields
    can_delete = False


@admin.register(Sample)
class SampleAdmin(admin.ModelAdmin):
    list_display = ["external_id", "problem", "answer", "is_correct", "verifier_score", "generator"]
    # No generator filter: listing its values is a DISTINCT over every sample (5 s at 12M).
    list_filter = ["campaign", "is_correct", "problem__split"]
    search_fields = ["external_id", "problem__unique_id", "answer", "generator"]
    list_select_related = ["problem"]
    raw_id_fields = ["problem"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    readonly_fields = ["numbered_steps", "steps_hash", "created_at"]
    fields = [
        "campaign",
        "problem",
        "external_id",
        "numbered_steps",
        "answer",
        "is_correct",
        "verifier_score",
        "generator",
        "steps_hash",
        "created_at",
    ]
    inlines = [ScoreInline]

    class Media:
        # KaTeX renders the steps' math as on the task page (static/js/admin-math.js).
        css = {"all": ["katex/katex.min.css", "css/admin.css"]}
        js = ["katex/katex.min.js", "katex/contrib/auto-render.min.js", "js/admin-math.js"]

    @admin.display(description="Steps")
    def numbered_steps(self, obj: Sample) -> str:
        """Each step rendered as on the task page (escaped Markdown, math left to KaTeX),
        with every checkpoint's score for that step beside it."""
        scores = list(obj.scores.select_related("checkpoint").order_by("checkpoint_id"))
        head = format_html_join(
            "", '<th class="stepwise-score">{}</th>', ((s.checkpoint.name,) for s in scores)
        )
        rows = format_html_join(
            "",
            '<tr data-step="{}"><td>{}</td><td><div class="math md">{}</div></td>{}</tr>',
            (
                (i, i + 1, render_markdown(text), _step_scores(scores, i))
                for i, text in enumerate(obj.steps)
            ),
        )
        return format_html(
            '<table class="stepwise-steps"><thead><tr><th>#</th><th>Step</th>{}</tr></thead>'
            "<tbody>{}</tbody></table>",
            head,
            rows,
        )


def _step_scores(scores: list[Score], step: int) -> str:
    """One cell per checkpoint: its score for `step`, or a dash past a truncated scoring."""
    cells = []
    for score in scores:
        value = score.step_scores[step] if step < len(score.step_scores) else None
        cells.append("—" if value is None else f"{value:.3f}")
    return format_html_join(
        "", '<td class="stepwise-score" data-score="{}">{}</td>', ((c, c) for c in cells)
    )


class CheckpointForm(forms.ModelForm):
    """A checkpoint added by hand passes `register_checkpoint`'s validation of its directory
    (the admin supplies the model and fields)."""

    def clean(self) -> dict:
        data = super().clean()
        if self.instance.pk is None and data.get("path"):
            validate_checkpoint_dir(data["path"], data.get("adapter"))
        return data


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    form = CheckpointForm
    list_display = [
        "name",
        "campaign",
        "adapter",
        "status",
        "trained_on_labels",
        "trained_on_generation",
        "created_at",
        "dashboard_link",
    ]
    list_filter = ["status", "adapter", "campaign", "retrain_trigger"]
    search_fields = ["name", "path", "base_model"]
    # Status and loop stage change through the lifecycle (activate, the loop), not by hand.
    readonly_fields = [
        "status",
        "retrain_trigger",
        "retrain_stage",
        "retrain_generation",
        "next_generation",
        "error",
        "created_at",
        "dashboard_link",
    ]

    @admin.display(description="Metrics")
    def dashboard_link(self, obj: Checkpoint) -> str:
        from django.urls import reverse

        if obj.pk is None:
            return "—"
        url = reverse("dashboard-checkpoint", args=[obj.pk])
        return format_html('<a href="{}">Metrics and best-of-N curve</a>', url)


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "status",
        "score_source",
        "checkpoint",
        "progress_display",
        "created_at",
    ]
    list_filter = ["campaign", "status"]
    list_select_related = ["campaign", "checkpoint"]
    # Status changes through the lifecycle (start, the pipeline, the loop), not by hand.
    readonly_fields = [
        "status",
        "params",
        "generator",
        "samples_generated",
        "samples_wanted",
        "generation_summary",
        "progress_display",
        "progress_done",
        "progress_total",
        "error",
        "created_at",
        "updated_at",
        "opened_at",
        "completed_at",
    ]

    actions = ["close_generations", "resume"]

    @admin.action(
        description="Close the selected open generations (their open slots are no longer "
        "handed out)",
        permissions=["change"],
    )
    def close_generations(self, request, queryset) -> None:
        for generation in queryset.select_related("campaign"):
            if not generation.complete():
                self.message_user(request, f"{generation} is not open.", messages.WARNING)
                continue
            AuditEvent.record(
                request.user,
                "admin",
                AuditEvent.Action.GENERATION_CLOSED,
                f"generation {generation.number}",
                campaign=generation.campaign,
            )
            self.message_user(request, f"{generation} closed.", messages.SUCCESS)

    @admin.action(
        description="Resume (queue again what a stuck running generation waits for)",
        permissions=["change"],
    )
    def resume(self, request, queryset) -> None:
        for generation in queryset.select_related("campaign"):
            queued = resume_generation(generation)
            if queued:
                AuditEvent.record(
                    request.user,
                    "admin",
                    AuditEvent.Action.GENERATION_STARTED,
                    f"generation {generation.number}, resumed",
                    campaign=generation.campaign,
                    tasks=queued,
                )
                message = f"{generation}: {queued} task(s) queued again."
                self.message_user(request, message, messages.SUCCESS)
            else:
                message = f"{generation}: nothing to resume ({generation.status})."
                self.message_user(request, message, messages.WARNING)

    @admin.display(description="Scoring progress")
    def progress_display(self, obj: Generation) -> str:
        if not obj.progress_total:
            return "—"
        return format_html(
            '<progress max="{}" value="{}"></progress> {} / {} samples ({}%)',
            obj.progress_total,
            obj.progress_done,
            obj.progress_done,
            obj.progress_total,
            round(100 * obj.progress),
        )


@admin.register(Selection)
class SelectionAdmin(admin.ModelAdmin):
    list_display = ["generation", "rank", "sample", "score", "is_wrong"]
    list_filter = ["generation__campaign", "is_wrong"]
    raw_id_fields = ["sample"]
    list_select_related = ["generation__campaign", "sample"]
    # Newest first by key: the model's order sorts every selection by campaign slug first.
    ordering = ["-id"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "generation", "sample", "labeler", "kind", "state", "lease_expires_at"]
    list_filter = ["state", "kind", "generation__campaign"]
    search_fields = ["labeler__username", "sample__external_id"]
    raw_id_fields = ["sample", "labeler"]
    list_select_related = ["generation__campaign", "sample", "labeler"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False


class StepRatingInline(admin.TabularInline):
    model = StepRating
    extra = 0


class AlternativeInline(admin.TabularInline):
    model = Alternative
    extra = 0
    fields = ["step", "index", "text", "rating", "rated_at"]
    readonly_fields = ["step", "index", "text", "rated_at"]


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "sample",
        "labeler",
        "prm800k_generation",
        "finish_reason",
        "total_time_ms",
        "is_quality_control",
        "is_initial_screening",
    ]
    list_filter = [
        "finish_reason",
        "is_quality_control",
        "is_initial_screening",
        "prm800k_generation",
    ]
    search_fields = ["labeler__username", "labeler_uuid", "sample__external_id"]
    raw_id_fields = ["assignment", "sample", "labeler"]
    list_select_related = ["sample", "labeler"]
    inlines = [StepRatingInline, AlternativeInline]

    def save_related(self, request, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        edited = [*form.changed_data]
        edited += [
            formset.model._meta.verbose_name_plural for formset in formsets if formset.has_changed()
        ]
        if change and edited:
            label = form.instance
            AuditEvent.record(
                request.user,
                "admin",
                AuditEvent.Action.LABEL_EDITED,
                f"label {label.pk}",
                campaign=label.sample.campaign,
                changed=[str(name) for name in edited],
            )


@admin.register(GoldStandard)
class GoldStandardAdmin(admin.ModelAdmin):
    list_display = ["sample", "purpose", "finish_reason", "created_at"]
    list_filter = ["purpose"]
    raw_id_fields = ["sample"]


@admin.register(QueuedTask)
class QueuedTaskAdmin(admin.ModelAdmin):
    """The task outbox (`annotate.dispatch`): what waits for the broker, and why. Beat's
    flush sends it; rows here are only read."""

    list_display = ["pk", "name", "queue", "created_at", "attempts", "last_error"]
    list_filter = ["name", "queue"]
    readonly_fields = ["name", "args", "queue", "created_at", "attempts", "last_error"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


from annotate import admin_quality, admin_security  # noqa: E402, F401
