"""API shapes. Serializers only shape and type-check; rules live in models and views' helpers.

Each resource has separate list (small, for pages of rows), detail (everything) and create
(only writable fields) serializers.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotate.models import (
    Assignment,
    Campaign,
    Checkpoint,
    Generation,
    Problem,
    Sample,
    Score,
    StepRating,
)
from annotate.models.campaign import DEFAULT_UNIFORM_FRACTION

# --- campaigns ----------------------------------------------------------------------------

CAMPAIGN_SETTINGS = [
    "samples_per_problem",
    "strategy",
    "k",
    "wrong_fraction",
    "max_per_problem",
    "uniform_fraction",
    "qc_rate",
    "overlap",
    "lease_minutes",
    "score_aggregation",
    "neutral_is_positive",
    "screening_required",
    "screening_pass_mark",
]


class CampaignListSerializer(serializers.ModelSerializer):
    class Meta:
        model = Campaign
        fields = ["slug", "name", "strategy", "k", "wrong_fraction", "active_checkpoint"]
        read_only_fields = fields


class CampaignCountsSerializer(serializers.Serializer):
    problems = serializers.IntegerField()
    samples = serializers.IntegerField()
    generations = serializers.IntegerField()
    checkpoints = serializers.IntegerField()


class CampaignDetailSerializer(serializers.ModelSerializer):
    counts = CampaignCountsSerializer(read_only=True)

    class Meta:
        model = Campaign
        fields = [
            "slug",
            "name",
            "guidelines",
            *CAMPAIGN_SETTINGS,
            "active_checkpoint",
            "created_at",
            "updated_at",
            "counts",
        ]
        read_only_fields = fields


class CampaignCreateSerializer(serializers.ModelSerializer):
    uniform_fraction = serializers.FloatField(
        default=DEFAULT_UNIFORM_FRACTION, min_value=0.0, max_value=1.0
    )

    class Meta:
        model = Campaign
        fields = ["slug", "name", "guidelines", *CAMPAIGN_SETTINGS]


# --- problems and samples -----------------------------------------------------------------


class ProblemListSerializer(serializers.ModelSerializer):
    class Meta:
        model = Problem
        fields = [
            "id",
            "unique_id",
            "subject",
            "level",
            "split",
            "ground_truth_answer",
            "ground_truth_status",
        ]
        read_only_fields = fields


class ProblemDetailSerializer(serializers.ModelSerializer):
    class Meta:
        model = Problem
        fields = [
            "id",
            "unique_id",
            "problem",
            "ground_truth_answer",
            "ground_truth_solution",
            "ground_truth_status",
            "ground_truth_note",
            "subject",
            "level",
            "split",
        ]
        read_only_fields = fields


class SampleListSerializer(serializers.ModelSerializer):
    problem = serializers.SlugRelatedField(slug_field="unique_id", read_only=True)
    n_steps = serializers.SerializerMethodField()

    class Meta:
        model = Sample
        fields = [
            "id",
            "external_id",
            "problem",
            "answer",
            "is_correct",
            "verifier_score",
            "generator",
            "n_steps",
        ]
        read_only_fields = fields

    def get_n_steps(self, sample: Sample) -> int:
        return len(sample.steps or [])


class ScoreSerializer(serializers.ModelSerializer):
    class Meta:
        model = Score
        fields = ["checkpoint", "score", "step_scores", "truncated"]
        read_only_fields = fields


class SampleDetailSerializer(serializers.ModelSerializer):
    problem = serializers.SlugRelatedField(slug_field="unique_id", read_only=True)
    steps = serializers.ListField(child=serializers.CharField(), read_only=True)
    scores = ScoreSerializer(many=True, read_only=True)

    class Meta:
        model = Sample
        fields = [
            "id",
            "external_id",
            "problem",
            "steps",
            "answer",
            "is_correct",
            "verifier_score",
            "generator",
            "created_at",
            "scores",
        ]
        read_only_fields = fields


class ImportSummarySerializer(serializers.Serializer):
    kind = serializers.CharField()
    lines = serializers.IntegerField()
    created = serializers.DictField(child=serializers.IntegerField())
    details = serializers.DictField(child=serializers.IntegerField())
    seconds = serializers.FloatField()
    lines_per_second = serializers.FloatField()


class ImportErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    line = serializers.IntegerField(allow_null=True)


class UploadFileSerializer(serializers.Serializer):
    """The multipart form of an upload (the body may also be raw JSONL)."""

    file = serializers.FileField()


class ProblemUploadQuerySerializer(serializers.Serializer):
    split = serializers.ChoiceField(choices=Problem.Split.choices, default=Problem.Split.TRAIN)


class SampleUploadQuerySerializer(serializers.Serializer):
    split_steps = serializers.CharField(
        required=False,
        max_length=100,
        trim_whitespace=False,
        help_text="Separator for `response` (default: a blank line).",
    )


class ProblemFilterSerializer(serializers.Serializer):
    split = serializers.ChoiceField(choices=Problem.Split.choices, required=False)


class SampleFilterSerializer(serializers.Serializer):
    problem = serializers.CharField(required=False, max_length=255, help_text="unique_id")
    is_correct = serializers.BooleanField(required=False, allow_null=True, default=None)


class ExportQuerySerializer(serializers.Serializer):
    generation = serializers.IntegerField(
        required=False,
        min_value=-1,
        max_value=2**31 - 1,
        help_text="Only this generation's labels (−1: screening).",
    )


class StepwiseExportQuerySerializer(ExportQuerySerializer):
    exclude_gold = serializers.BooleanField(
        required=False, default=False, help_text="Leave out labels of gold (QC, screening) samples."
    )
    finished_only = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Only labels that judged the whole solution (found_error or solution).",
    )


# --- generations --------------------------------------------------------------------------


class GenerationListSerializer(serializers.ModelSerializer):
    progress = serializers.FloatField(read_only=True)

    class Meta:
        model = Generation
        fields = ["number", "status", "score_source", "checkpoint", "progress", "created_at"]
        read_only_fields = fields


class GenerationCountsSerializer(serializers.Serializer):
    selected = serializers.IntegerField()
    assignments = serializers.DictField(child=serializers.IntegerField())


class GenerationDetailSerializer(serializers.ModelSerializer):
    progress = serializers.FloatField(read_only=True)
    counts = GenerationCountsSerializer(read_only=True)

    class Meta:
        model = Generation
        fields = [
            "number",
            "status",
            "score_source",
            "checkpoint",
            "params",
            "progress",
            "progress_done",
            "progress_total",
            "error",
            "created_at",
            "opened_at",
            "completed_at",
            "counts",
        ]
        read_only_fields = fields


class GenerationStartSerializer(serializers.Serializer):
    scores = serializers.RegexField(
        r"^(imported|active|\d{1,18})$",
        default="imported",
        help_text='Score source: "imported" verifier scores, the "active" checkpoint, or a '
        "checkpoint id.",
    )
    dry_run = serializers.BooleanField(
        default=False, help_text="Preview the selection without writing anything."
    )
    # Per-generation overrides of the campaign's selection settings (frozen on the generation).
    strategy = serializers.ChoiceField(choices=Campaign.Strategy.choices, required=False)
    k = serializers.IntegerField(required=False, min_value=1, max_value=10_000_000)
    wrong_fraction = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
    max_per_problem = serializers.IntegerField(required=False, min_value=1, max_value=10_000_000)

    OVERRIDES = ("strategy", "k", "wrong_fraction", "max_per_problem")


class SelectedSampleSerializer(serializers.Serializer):
    sample = serializers.IntegerField(help_text="Database id.")
    id = serializers.CharField(help_text="The id the sample was imported with.")
    problem = serializers.CharField()
    score = serializers.FloatField()
    wrong = serializers.BooleanField()


class SelectionPreviewSerializer(serializers.Serializer):
    selected = SelectedSampleSerializer(many=True)
    pool = serializers.IntegerField(help_text="Samples selection could pick from.")
    params = serializers.DictField(help_text="The selection parameters used.")
    scores = serializers.JSONField(help_text='"imported", or the checkpoint id scored with.')


class TaskQueuedSerializer(serializers.Serializer):
    queued = serializers.CharField(help_text="Name of the Celery task enqueued.")
    detail = serializers.CharField()


# --- checkpoints --------------------------------------------------------------------------


class CheckpointListSerializer(serializers.ModelSerializer):
    campaign = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Checkpoint
        fields = ["id", "name", "campaign", "adapter", "status", "created_at"]
        read_only_fields = fields


class CheckpointDetailSerializer(serializers.ModelSerializer):
    campaign = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Checkpoint
        fields = [
            "id",
            "name",
            "campaign",
            "path",
            "adapter",
            "base_model",
            "status",
            "trained_on_labels",
            "trained_on_generation",
            "metrics",
            "created_at",
        ]
        read_only_fields = fields


class CheckpointCreateSerializer(serializers.ModelSerializer):
    campaign = serializers.SlugRelatedField(
        slug_field="slug", queryset=Campaign.objects.all(), required=False, allow_null=True
    )
    path = serializers.CharField(
        max_length=1000, help_text="Absolute path of the weights directory on the servers."
    )

    class Meta:
        model = Checkpoint
        fields = ["name", "campaign", "path", "adapter", "base_model"]


class CheckpointFilterSerializer(serializers.Serializer):
    campaign = serializers.SlugField(required=False, max_length=100)
    status = serializers.ChoiceField(choices=Checkpoint.Status.choices, required=False)


class CheckpointCampaignSerializer(serializers.Serializer):
    campaign = serializers.SlugField(
        required=False, max_length=100, help_text="Defaults to the checkpoint's own campaign."
    )


# --- the caller's own work ----------------------------------------------------------------


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    is_staff = serializers.BooleanField()


class StepRatingSerializer(serializers.ModelSerializer):
    class Meta:
        model = StepRating
        fields = ["step", "rating", "flagged"]
        read_only_fields = fields


class MyAssignmentListSerializer(serializers.ModelSerializer):
    """A labeler's view of their own assignment; QC/screening status is never shown."""

    campaign = serializers.CharField(source="sample.campaign.slug", read_only=True)
    generation = serializers.IntegerField(
        source="generation.number", read_only=True, allow_null=True
    )
    sample = serializers.CharField(source="sample.external_id", read_only=True)

    class Meta:
        model = Assignment
        fields = [
            "id",
            "campaign",
            "generation",
            "sample",
            "state",
            "lease_expires_at",
            "claimed_at",
            "submitted_at",
        ]
        read_only_fields = fields


class MyLabelSerializer(serializers.Serializer):
    finish_reason = serializers.CharField(allow_null=True)
    total_time_ms = serializers.IntegerField()
    ratings = StepRatingSerializer(many=True)


class MyAssignmentDetailSerializer(MyAssignmentListSerializer):
    problem = serializers.CharField(source="sample.problem.problem", read_only=True)
    steps = serializers.ListField(
        source="sample.steps", child=serializers.CharField(), read_only=True
    )
    label = serializers.SerializerMethodField()

    class Meta(MyAssignmentListSerializer.Meta):
        fields = [*MyAssignmentListSerializer.Meta.fields, "problem", "steps", "label"]
        read_only_fields = fields

    @extend_schema_field(MyLabelSerializer(allow_null=True))
    def get_label(self, assignment: Assignment) -> dict | None:
        label = getattr(assignment, "label", None)
        if label is None:
            return None
        return MyLabelSerializer(
            {
                "finish_reason": label.finish_reason,
                "total_time_ms": label.total_time_ms,
                "ratings": label.ratings.all(),
            }
        ).data
